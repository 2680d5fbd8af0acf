# Hand-made stream (mkstreams.py damaged) with one problem of each kind:
# every one is reported, in stream order, each with offset and record index.
python3 "$(dirname "$0")/mkstreams.py" damaged damaged.mig || exit
"$TOOLS/migstream-validate" damaged.mig
