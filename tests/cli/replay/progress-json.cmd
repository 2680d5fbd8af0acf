# --progress=json: the stream's bytes as they are read, all of them at the end.
P=$(dirname "$0")/../progress.py
"$TOOLS/migstream-replay" --progress=json -o out "$SAMPLES/basic.mig" 2>err.txt
echo "exit $?"
python3 "$P" migstream-replay err.txt; cat err.txt >&2
