# --version: one line on standard output.
"$TOOLS/migstream-import" --version
