# truncated.mig (no END record) on standard input: exit 1, nothing left.
"$TOOLS/migstream-replay" -o out - < "$SAMPLES/truncated.mig"; rc=$?
ls -A
exit $rc
