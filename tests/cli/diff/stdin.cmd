# "-" reads a stream from standard input, as A or as B, also from a pipe.
D=$TOOLS/migstream-diff
"$D" - "$SAMPLES/rebatched.mig" < "$SAMPLES/basic.mig"; echo "A on stdin: exit $?"
cat "$SAMPLES/changed.mig" | "$D" --json "$SAMPLES/basic.mig" -; echo "B on a pipe: exit $?"
