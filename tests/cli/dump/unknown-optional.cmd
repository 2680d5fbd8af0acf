# A private record 0x8001 without must-understand is shown, not hidden.
"$TOOLS/migstream-dump" "$SAMPLES/unknown-optional.mig"
