# A good stream against a copy with one flipped byte in record 6 (round 1's
# pages): the copy holds what records 0..5 left, so round 1 and 2's pages,
# the overlays and the device differ; then the checksum mismatch; exit 1.
# The damaged copy is side A here.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[30000] ^= 1; open("flipped.mig", "wb").write(b)' "$SAMPLES/live.mig"
"$TOOLS/migstream-diff" flipped.mig "$SAMPLES/live.mig"
