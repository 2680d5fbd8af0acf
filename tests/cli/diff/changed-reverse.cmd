# changed vs basic: the same differences, each in the other direction.
H=$(dirname "$0")
"$TOOLS/migstream-diff" "$SAMPLES/changed.mig" "$SAMPLES/basic.mig" > out.txt; rc=$?
cat out.txt
# A mismatch fails the case (exit 99), whatever the expectation files say.
python3 "$H/expect.py" changed-reverse | diff - out.txt >&2 || { echo "expect.py changed-reverse disagrees" >&2; exit 99; }
echo "(matches expect.py changed-reverse)"
exit $rc
