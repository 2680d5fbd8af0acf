"$TOOLS/migstream-compat" --bogus a b
