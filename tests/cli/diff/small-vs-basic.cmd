# small.mig (gen-streams small()) vs basic: regions ram (id 0, 16 pages) and
# huge (id 7, 2 MiB pages) against pc.ram (id 0) and vga.vram (id 1). No name
# matches, so ram pairs with pc.ram by id (a name difference), huge and
# vga.vram exist on one side only. pc.ram is larger: its pages 16..1023 are
# missing in A. INFO differs (no machine, a description). Devices: cpu#0 rip
# 0x1000 vs 0xfff0, cpu#1 only in A, virtio-net only in B.
# Every line is also computed from gen-streams.c alone by expect.py.
H=$(dirname "$0")
"$TOOLS/migstream-diff" "$SAMPLES/small.mig" "$SAMPLES/basic.mig" > out.txt; rc=$?
cat out.txt
# A mismatch fails the case (exit 99), whatever the expectation files say.
python3 "$H/expect.py" small-vs-basic | diff - out.txt >&2 || { echo "expect.py small-vs-basic disagrees" >&2; exit 99; }
echo "(matches expect.py small-vs-basic)"
exit $rc
