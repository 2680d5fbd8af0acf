# In JSON mode a last {"kind":"error"} object follows the records read; exit 2.
"$TOOLS/migstream-dump" --json "$SAMPLES/corrupt.mig" >out.jsonl
status=$?
cat out.jsonl
exit $status
