# zstd-compressed pages validate like raw ones.
"$TOOLS/migstream-validate" "$SAMPLES/compressed.mig"
