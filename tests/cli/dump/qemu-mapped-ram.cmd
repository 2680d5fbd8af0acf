# A mapped-ram stream (QEMU 9.0 and later: pages at fixed file offsets),
# built from QEMU's layout as tests/qemu/test_import_qemu.c builds it:
# "pc.ram" (8 pages, pages 1, 2 and 6 written) and "rom" (1 page). A file
# is read by position; from a pipe it cannot be read (exit 2). Replayed,
# pc.ram's image holds the pages written.
python3 - mr.qemu <<'PY'
import struct, sys
PS = 4096
ALIGN = 0x100000
b = bytearray()
be32 = lambda v: b.extend(struct.pack(">I", v))
be64 = lambda v: b.extend(struct.pack(">Q", v))
def name8(s):
    b.append(len(s)); b.extend(s.encode())
be32(0x5145564d); be32(3)
b.append(0x07); be32(6); b.extend(b"pc-9.0")
b.append(0x05); name8("configuration/capabilities"); be32(1); be32(2)
name8("multifd"); name8("mapped-ram")
b.append(0x01); be32(2); name8("ram"); be32(0); be32(4)
be64(9 * PS | 0x04)
for name, pages, bits in (("pc.ram", 8, 0x46), ("rom", 1, 0x00)):
    name8(name); be64(pages * PS)
    bm = len(b) + 28
    area = (bm + 8 + ALIGN - 1) // ALIGN * ALIGN
    be32(1); be64(PS); be64(bm); be64(area)
    b.extend(bytes([bits]) + bytes(7))
    b.extend(bytes(area - len(b)))
    for pg in range(pages):
        b.extend(bytes([0x10 + pg if bits >> pg & 1 else 0]) * PS)
be64(0x10); b.append(0x7e); be32(2)
b.append(0x00)
open(sys.argv[1], "wb").write(b)
PY
"$TOOLS/migstream-dump" --summary mr.qemu; echo "exit $?"
cat mr.qemu | "$TOOLS/migstream-dump" --summary -; echo "pipe: exit $?"
"$TOOLS/migstream-replay" -q -o out mr.qemu; echo "replay: exit $?"
od -A d -t x1 out/region-0.img
