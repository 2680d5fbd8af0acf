# Every instance of a path; the last record of each instance wins.
python3 "$(dirname "$0")/../validate/mkstreams.py" sparse sparse.mig || exit
"$TOOLS/migstream-dump" --device cpu sparse.mig
"$TOOLS/migstream-dump" --json --device cpu sparse.mig
