# No regions, no devices: valid.
"$TOOLS/migstream-validate" "$SAMPLES/empty-guest.mig"
