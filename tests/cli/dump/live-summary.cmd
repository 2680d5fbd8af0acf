# Per-round counts of what was sent, and each region's final states: the
# pages hinted free and never reused stay DISCARDED, apart from ZERO.
"$TOOLS/migstream-dump" --summary "$SAMPLES/live.mig"
