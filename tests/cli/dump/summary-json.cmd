# --summary with --json: only the totals object.
"$TOOLS/migstream-dump" --summary --json "$SAMPLES/basic.mig"
