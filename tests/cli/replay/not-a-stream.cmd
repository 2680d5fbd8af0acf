# Bytes that are not a stream, and a stream with bytes after END: exit 1,
# nothing left.
printf 'hello, world\n' > text
"$TOOLS/migstream-replay" -o out1 text; echo "text: exit $?"
{ cat "$SAMPLES/empty-guest.mig"; printf x; } > trailing.mig
"$TOOLS/migstream-replay" -o out2 trailing.mig; rc=$?
ls -A
exit $rc
