# --version: the tool's, the library's and the format's versions.
"$TOOLS/migstream-pack" --version
