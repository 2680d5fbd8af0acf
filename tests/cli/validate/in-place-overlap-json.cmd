# The same, as JSON.
"$TOOLS/migstream-validate" --json "$SAMPLES/in-place-overlap.mig"
