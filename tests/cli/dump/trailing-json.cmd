# Bytes after END in JSON mode: the totals object, then an error object, exit 2.
{ cat "$SAMPLES/basic.mig"; printf junk; } >trailing.mig
"$TOOLS/migstream-dump" --summary --json trailing.mig >out.jsonl
status=$?
cut -c1-120 out.jsonl
exit $status
