# The same report as JSON Lines; every line must parse.
python3 "$(dirname "$0")/mkstreams.py" damaged damaged.mig || exit
"$TOOLS/migstream-validate" --json damaged.mig >out.jsonl
status=$?
cat out.jsonl
python3 -c "
import json
for line in open(\"out.jsonl\"):
    json.loads(line)
" || echo "invalid JSON"
exit $status
