# A private record without must-understand is skipped: not a difference.
"$TOOLS/migstream-diff" "$SAMPLES/unknown-optional.mig" "$SAMPLES/basic.mig"
