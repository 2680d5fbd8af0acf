# The same, as JSON.
"$TOOLS/migstream-diff" --json "$SAMPLES/live.mig" "$SAMPLES/live-changed.mig"
