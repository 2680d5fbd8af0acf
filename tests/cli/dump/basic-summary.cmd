# Only the totals block.
"$TOOLS/migstream-dump" --summary "$SAMPLES/basic.mig"
