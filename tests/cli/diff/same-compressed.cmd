# zstd-compressed pages: same state.
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" "$SAMPLES/compressed.mig"
