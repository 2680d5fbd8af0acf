# No regions, no devices: a manifest with empty lists and nothing else.
"$TOOLS/migstream-replay" -o out "$SAMPLES/empty-guest.mig" || exit
ls out
cat out/manifest.json
