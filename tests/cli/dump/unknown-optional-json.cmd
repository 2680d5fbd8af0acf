# The unknown record as a JSON object with known:false.
set -o pipefail
"$TOOLS/migstream-dump" --json "$SAMPLES/unknown-optional.mig" | grep -E "\"known\":false|\"kind\":\"totals\""
