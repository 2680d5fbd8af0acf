# basic vs rebatched as JSON Lines: only the summary, "same":true.
"$TOOLS/migstream-diff" --json "$SAMPLES/basic.mig" "$SAMPLES/rebatched.mig"
