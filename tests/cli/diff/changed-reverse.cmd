# changed vs basic: the same differences, each in the other direction.
H=$(dirname "$0")
"$TOOLS/migstream-diff" "$SAMPLES/changed.mig" "$SAMPLES/basic.mig" > out.txt; rc=$?
cat out.txt
python3 "$H/expect.py" changed-reverse | diff - out.txt && echo "(matches expect.py changed-reverse)"
exit $rc
