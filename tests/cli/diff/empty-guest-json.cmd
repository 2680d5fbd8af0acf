# basic vs empty-guest as JSON Lines.
"$TOOLS/migstream-diff" --json "$SAMPLES/basic.mig" "$SAMPLES/empty-guest.mig"
