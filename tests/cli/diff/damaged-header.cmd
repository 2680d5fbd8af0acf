# A copy damaged right after its preamble: its INFO record (machine,
# description) was never read, so no metadata difference is made up for
# it; only what it never got to (regions, devices), then the damage (exit
# 1), in text and JSON, on either side. Cut after INFO, the copy's machine
# is known and the same: still no metadata difference; against small.mig
# (an INFO without a machine), its INFO differences are reported.
head -c 120 "$SAMPLES/basic.mig" > cut.mig
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" cut.mig; echo "exit $?"
"$TOOLS/migstream-diff" --json cut.mig "$SAMPLES/basic.mig" | grep -c '"kind":"meta"'
echo "exit ${PIPESTATUS[0]}"
head -c 150 "$SAMPLES/basic.mig" > cut-after-info.mig
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" cut-after-info.mig | grep -c '^meta '
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-diff" "$SAMPLES/small.mig" cut-after-info.mig | grep '^meta '
echo "exit ${PIPESTATUS[0]}"
