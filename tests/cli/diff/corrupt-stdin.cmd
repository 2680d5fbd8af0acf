# The corrupt stream as B on standard input: the message says so.
cd "$SAMPLES" && "$TOOLS/migstream-diff" --json basic.mig - < corrupt.mig
