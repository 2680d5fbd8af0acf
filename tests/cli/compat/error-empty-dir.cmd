mkdir d
"$TOOLS/migstream-compat" d d
