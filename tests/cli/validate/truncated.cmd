# basic without END: invalid (exit 1, not 2).
"$TOOLS/migstream-validate" "$SAMPLES/truncated.mig"
