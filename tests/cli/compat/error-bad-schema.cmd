# A schema breaking the language: the member is named.
echo '{"migstream_schema": 1, "devices": [{"schema": "net", "version": 2, "fields": [{"name": "mac", "type": "string"}]}]}' >bad.json
"$TOOLS/migstream-compat" bad.json bad.json
