# A copy of live.mig cut in the middle of record 8: the records read whole,
# then the totals of what they hold, marked partial (no digest: no END was
# read), then the error; exit 1.
head -c 40000 "$SAMPLES/live.mig" > cut.mig
"$TOOLS/migstream-dump" cut.mig
