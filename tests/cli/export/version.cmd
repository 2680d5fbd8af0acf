# --version: one line on standard output.
"$TOOLS/migstream-export" --version
