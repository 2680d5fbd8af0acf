# Hand-made stream (mkstreams.py sparse): pages never sent, counted per
# region, and a device instance sent twice are warnings: valid, exit 0.
python3 "$(dirname "$0")/mkstreams.py" sparse sparse.mig || exit
"$TOOLS/migstream-validate" sparse.mig
