# --progress=json: the bytes of the images read, of their total.
P=$(dirname "$0")/../progress.py
"$TOOLS/migstream-replay" -q -o dir "$SAMPLES/basic.mig" || exit
"$TOOLS/migstream-pack" --progress=json -o out.mig dir 2>err.txt
echo "exit $?"
python3 "$P" migstream-pack err.txt; cat err.txt >&2
