# Malformed schema files: the file, line and column are named.
printf '{"migstream_schema": 1,\n "devices": [\n' >bad.json
"$TOOLS/migstream-compat" bad.json bad.json
