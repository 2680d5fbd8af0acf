# An unknown optional record is a warning: still valid, exit 0.
"$TOOLS/migstream-validate" "$SAMPLES/unknown-optional.mig"
