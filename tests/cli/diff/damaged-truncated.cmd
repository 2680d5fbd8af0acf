# A good stream against a copy cut in the middle of record 8 (round 2's
# pages): the copy is compared as far as it was read (round 2's page, the
# overlays and the device never arrived), then where its damage starts is
# said, on standard output and standard error; exit 1.
head -c 40000 "$SAMPLES/live.mig" > cut.mig
"$TOOLS/migstream-diff" "$SAMPLES/live.mig" cut.mig
