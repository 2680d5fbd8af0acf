# --progress=json through a pipe (no total) on a 2 GiB guest that takes a
# while to read: lines at most 4 a second, then the last with "done": true
# (../progress.py checks them; run.sh checks them against the schema).
set -o pipefail
P=$(dirname "$0")/../progress.py
"$GEN" --big 2 | "$TOOLS/migstream-validate" --progress=json - 2>err.txt
echo "exit $?"
python3 "$P" migstream-validate err.txt; cat err.txt >&2
