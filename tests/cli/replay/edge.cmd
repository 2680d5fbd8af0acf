# A stream written by hand from FORMAT.md (mkstream.py edge: see its
# comment): region names with '/', '..' and characters JSON escapes, a
# region declared late, pages never sent (missing), DATA then ZERO, a DATA
# page of zeros, a region page size of 8 KiB, a device sent twice (the last
# wins), devices listed by path then instance, a skipped private record.
# The manifest's digest is the one mkstream.py computed.
H=$(dirname "$0")
python3 "$H/mkstream.py" edge edge.mig || exit
"$TOOLS/migstream-replay" -o out edge.mig || exit
ls out
cat out/manifest.json
python3 "$H/holes.py" --pages 4096 out/region-7.img out/region-1.img
python3 "$H/holes.py" --pages 8192 out/region-3.img
for i in 0 1 2; do echo "device-$i.cbor: $(od -An -tx1 out/device-$i.cbor)"; cat out/device-$i.json; done
