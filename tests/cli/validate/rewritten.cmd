# Pages sent twice are allowed (the later copy wins): no warning.
"$TOOLS/migstream-validate" "$SAMPLES/rewritten.mig"
