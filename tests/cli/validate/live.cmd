# A live migration with rounds, every page state and overlays is valid.
"$TOOLS/migstream-validate" "$SAMPLES/live.mig"
