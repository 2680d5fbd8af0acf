# changed.mig (gen-streams make_guest(changed)): pages 5 and 6 were zero in
# basic and get one non-zero byte each; page 100 was a random-data page and is
# now zero; page 900 was a one-byte page and is now all 0xcc; the cpu rip goes
# from 0xfff0 (65520) to 0x7c00 (31744). Nothing else differs.
H=$(dirname "$0")
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" "$SAMPLES/changed.mig" > out.txt; rc=$?
cat out.txt
# A mismatch fails the case (exit 99), whatever the expectation files say.
python3 "$H/expect.py" changed | diff - out.txt >&2 || { echo "expect.py changed disagrees" >&2; exit 99; }
echo "(matches expect.py changed)"
exit $rc
