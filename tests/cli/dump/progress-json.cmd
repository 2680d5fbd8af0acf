# --progress=json: JSON Lines on standard error (checked against
# docs/schemas/progress.schema.json by run.sh), even with -q: bytes read of
# the total, the last line with "done": true. ../progress.py checks the
# lines' order and rate and prints what does not depend on timing. On a
# damaged stream the last progress line comes before the error message.
P=$(dirname "$0")/../progress.py
"$TOOLS/migstream-dump" -q --progress=json --summary "$SAMPLES/basic.mig" >/dev/null 2>err.txt
echo "exit $?"
python3 "$P" migstream-dump err.txt; cat err.txt >&2
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[30000] ^= 1; open("flipped.mig", "wb").write(b)' "$SAMPLES/live.mig"
"$TOOLS/migstream-dump" --progress json --summary flipped.mig >/dev/null 2>err.txt
echo "exit $?"
python3 "$P" migstream-dump err.txt; cat err.txt >&2
"$TOOLS/migstream-dump" --progress=yes "$SAMPLES/basic.mig" 2>&1; echo "bad mode: exit $?"
