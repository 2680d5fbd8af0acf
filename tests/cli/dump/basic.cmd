# Text dump of the basic sample: header block, one line per record, totals.
"$TOOLS/migstream-dump" "$SAMPLES/basic.mig"
