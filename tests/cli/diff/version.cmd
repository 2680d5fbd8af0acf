# --version: program, library and format versions.
"$TOOLS/migstream-diff" --version
