# basic vs compressed as JSON Lines (compressed as A this time).
"$TOOLS/migstream-diff" --json "$SAMPLES/compressed.mig" "$SAMPLES/basic.mig"
