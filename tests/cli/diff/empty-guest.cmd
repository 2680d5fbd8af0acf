# basic vs empty-guest: both regions and both devices exist in A only, with
# their page counts (pc.ram: 196 random + 95 one-byte pages = 291 data, 733
# zero; vga.vram: page 3 data, 63 zero). INFO and writer are the same.
H=$(dirname "$0")
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" "$SAMPLES/empty-guest.mig" > out.txt; rc=$?
cat out.txt
# A mismatch fails the case (exit 99), whatever the expectation files say.
python3 "$H/expect.py" empty-guest | diff - out.txt >&2 || { echo "expect.py empty-guest disagrees" >&2; exit 99; }
echo "(matches expect.py empty-guest)"
exit $rc
