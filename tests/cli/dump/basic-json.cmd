# JSON Lines dump of the basic sample; every line must parse as JSON.
"$TOOLS/migstream-dump" --json "$SAMPLES/basic.mig" >out.jsonl || exit
cat out.jsonl
python3 -c "
import json, sys
for n, line in enumerate(open(\"out.jsonl\"), 1):
    json.loads(line)
" || echo "invalid JSON"
