# The same in JSON: the totals object has "partial": true and a null digest.
head -c 40000 "$SAMPLES/live.mig" > cut.mig
"$TOOLS/migstream-dump" --json cut.mig
