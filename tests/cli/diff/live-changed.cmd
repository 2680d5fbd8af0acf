# A FILL page with another word, a page left DISCARDED (the guest never
# reused it) against DATA, and an overlay built from another frequency.
"$TOOLS/migstream-diff" "$SAMPLES/live.mig" "$SAMPLES/live-changed.mig"
