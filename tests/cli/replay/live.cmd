# A live migration in rounds (format 1.1): the manifest counts FILL,
# DISCARDED and IN_PLACE pages, lists the in-place references and the
# overlays; the image equals that of the same final guest sent in one pass
# (live-flat.mig); FILL pages are stored, DISCARDED and IN_PLACE are holes.
H=$(dirname "$0")
"$TOOLS/migstream-replay" -q -o live "$SAMPLES/live.mig" || exit
"$TOOLS/migstream-replay" -q -o flat "$SAMPLES/live-flat.mig" || exit
cat live/manifest.json
cmp live/region-0.img flat/region-0.img && echo "rounds replay to the one-pass image"
python3 "$H/holes.py" --pages 4096 live/region-0.img | sed -n '1,5p;17,18p;41,43p;51,52p;57,58p'
