# The corrupt stream as B on standard input, in JSON: the error object names
# side b and "standard input" (the differences are counted, the last lines
# shown).
cd "$SAMPLES" && "$TOOLS/migstream-diff" --json basic.mig - < corrupt.mig > "$OLDPWD/out.jsonl"
status=$?
echo "$(wc -l < "$OLDPWD/out.jsonl") lines, the first and the last 3:"
head -n 1 "$OLDPWD/out.jsonl"
tail -n 3 "$OLDPWD/out.jsonl"
exit $status
