# --progress=json: the bytes of every stream read (no total: the streams of
# a directory are not known in advance).
P=$(dirname "$0")/../progress.py
"$TOOLS/migstream-compat" --progress=json "$SAMPLES/basic.mig" "$SAMPLES/changed.mig" >/dev/null 2>err.txt
echo "exit $?"
python3 "$P" migstream-compat err.txt; cat err.txt >&2
