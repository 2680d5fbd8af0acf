# FORMAT.md test vector 12.2, rebuilt byte by byte by mkstream.py: page 1 of
# "ram" is 0xAB, pages 0, 2 and 3 are zero holes.
H=$(dirname "$0")
python3 "$H/mkstream.py" vector-pages pages.mig || exit
"$TOOLS/migstream-replay" -o out pages.mig || exit
cat out/manifest.json
python3 "$H/holes.py" --pages 4096 out/region-0.img
