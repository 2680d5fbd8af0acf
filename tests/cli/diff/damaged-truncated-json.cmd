# The same in JSON: the differences, an error object naming side b, its
# input, the status, byte and record, then the summary marked partial.
head -c 40000 "$SAMPLES/live.mig" > cut.mig
"$TOOLS/migstream-diff" --json "$SAMPLES/live.mig" cut.mig
