# basic vs rewritten as JSON Lines.
"$TOOLS/migstream-diff" --json "$SAMPLES/basic.mig" "$SAMPLES/rewritten.mig"
