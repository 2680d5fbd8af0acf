# The same with --strict: invalid, exit 1; as JSON.
python3 "$(dirname "$0")/mkstreams.py" sparse sparse.mig || exit
"$TOOLS/migstream-validate" --strict --json sparse.mig
