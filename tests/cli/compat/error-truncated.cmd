# A truncated stream is an error, not an answer.
cp "$SAMPLES/truncated.mig" t.mig
"$TOOLS/migstream-compat" "$SAMPLES/basic.mig" t.mig
