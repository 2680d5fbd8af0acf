# basic vs changed as JSON Lines (see changed.cmd for the expected values).
"$TOOLS/migstream-diff" --json "$SAMPLES/basic.mig" "$SAMPLES/changed.mig"
