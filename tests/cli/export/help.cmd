# --help: usage on standard output, exit 0.
"$TOOLS/migstream-export" --help
