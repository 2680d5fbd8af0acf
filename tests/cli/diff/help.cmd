# --help: the usage summary on standard output, exit 0.
"$TOOLS/migstream-diff" --help
