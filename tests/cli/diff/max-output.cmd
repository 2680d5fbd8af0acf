# FILL pages take no room in the temporary files: 8 TiB of them compare in
# a moment, against themselves, within 8K (the DATA page of each side).
# DATA pages do: basic.mig's do not fit in 4K: the temporary files cannot
# be written (exit 2, as replay's output past its limit), and the message
# says how much they would take, in --json too. A limit that is not a size
# is a usage error.
H=$(dirname "$0")
python3 "$H/../../resources/gen.py" fill-huge 1 huge.mig || exit
"$TOOLS/migstream-diff" --max-output 8K huge.mig huge.mig
echo "exit $?"
cp "$SAMPLES/basic.mig" .
"$TOOLS/migstream-diff" --max-output 4K basic.mig basic.mig 2>&1 |
  sed 's/ would take [0-9]* bytes ([0-9.]* [KM]iB)/ would take N bytes (S)/'
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-diff" --json --max-output 4K basic.mig basic.mig 2>&1 |
  sed 's/ would take [0-9]* bytes ([0-9.]* [KM]iB)/ would take N bytes (S)/'
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-diff" --max-output 1Q "$SAMPLES/basic.mig" "$SAMPLES/basic.mig"
echo "exit $?"
