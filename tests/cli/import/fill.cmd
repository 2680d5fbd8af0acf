# --fill on import: QEMU sends a page of one repeated word as a normal page
# of data; imported with --fill it becomes a FILL page, with the same
# contents (a stream with FILL pages, exported to QEMU and imported back).
python3 - <<'PY'
import struct
out = bytearray()
for i in range(32):
    if i % 4 == 1:
        out += struct.pack('<Q', 0xfeedfacecafef00d) * 512
    elif i % 4 == 2:
        out += bytes(4096)
    else:
        out += bytes((i * 13 + j) & 255 for j in range(4096))
open('img.bin', 'wb').write(out)
PY
"$TOOLS/migstream-pack" -q --fill -o fill.ms img.bin
"$TOOLS/migstream-export" qemu -q -o guest.qemu fill.ms; echo "export exit $?"
"$TOOLS/migstream-import" qemu -q -o plain.ms guest.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -q --fill -o filled.ms guest.qemu; echo "--fill exit $?"
"$TOOLS/migstream-dump" --summary plain.ms | grep -E '^  region'
"$TOOLS/migstream-dump" --summary filled.ms | grep -E '^  region'
"$TOOLS/migstream-replay" -q -o out filled.ms; echo "replay exit $?"
cmp out/region-0.img img.bin && echo "same memory"
rm -r out
ls -A
