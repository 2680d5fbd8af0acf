"$TOOLS/migstream-compat" only-one
