"$TOOLS/migstream-compat" --help
