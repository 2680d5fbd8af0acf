# --progress=json: the bytes of A, then of B counting on, of their total.
P=$(dirname "$0")/../progress.py
"$TOOLS/migstream-diff" --progress=json "$SAMPLES/basic.mig" "$SAMPLES/changed.mig" >/dev/null 2>err.txt
echo "exit $?"
python3 "$P" migstream-diff err.txt; cat err.txt >&2
