# changed vs basic as JSON Lines.
"$TOOLS/migstream-diff" --json "$SAMPLES/changed.mig" "$SAMPLES/basic.mig"
