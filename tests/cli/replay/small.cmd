# small.mig (gen-streams): zstd level 1, a region of 2 MiB pages whose page 1
# comes before page 0, a skipped private record, a description, two
# instances of "cpu". ram pages 0, 3, ..., 15 hold 'a' + page; huge page 1
# holds a 0x01 at byte 12345. Packing the directory and replaying that gives
# the same files.
H=$(dirname "$0")
"$TOOLS/migstream-replay" -o out "$SAMPLES/small.mig" || exit
cat out/manifest.json
python3 "$H/holes.py" --pages 4096 out/region-0.img
python3 "$H/holes.py" 2097152 out/region-7.img
[ "$(od -An -tx1 -j $((2097152 + 12344)) -N 3 out/region-7.img)" = " 00 01 00" ] && echo "huge: 01 at byte 12345 of page 1"
cat out/device-0.json out/device-1.json
"$TOOLS/migstream-pack" -o again.mig out && "$TOOLS/migstream-replay" -o again again.mig || exit
for f in region-0.img region-7.img device-0.cbor device-1.cbor; do cmp out/$f again/$f || echo "$f DIFFERS"; done
diff out/manifest.json again/manifest.json
exit 0
