# Tiny batches, pages in reverse chunks, devices in the other order: same state.
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" "$SAMPLES/rebatched.mig"
