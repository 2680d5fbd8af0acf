# A device without a schema is a warning; --strict makes it fail.
. "$(dirname "$0")/lib.sh"
echo '{"migstream_schema": 1, "devices": []}' >empty.json
stream a.mig cpu:x86-cpu:1:cpu
"$TOOLS/migstream-validate" --schema empty.json a.mig; echo "exit $?"
"$TOOLS/migstream-validate" --json --strict --schema empty.json a.mig
