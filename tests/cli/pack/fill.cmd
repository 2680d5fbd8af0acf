# --fill: pages of one repeated 8-byte word travel as FILL pages (16 bytes
# of extent instead of a page of data); the replayed image is the packed
# one either way. Character devices and FIFOs are written in place.
python3 - <<'PY'
import struct
out = bytearray()
for i in range(64):
    if i % 4 == 1:
        out += struct.pack('<Q', 0x0123456789abcdef) * 512
    elif i % 4 == 2:
        out += bytes(4096)
    else:
        out += bytes((i * 7 + j) & 255 for j in range(4096))
open('img.bin', 'wb').write(out)
PY
"$TOOLS/migstream-pack" -q --fill -o fill.ms img.bin; echo "exit $?"
"$TOOLS/migstream-pack" -q -o data.ms img.bin; echo "exit $?"
"$TOOLS/migstream-dump" --summary fill.ms | grep -E '^  (region|meta)'
"$TOOLS/migstream-dump" --summary data.ms | grep -E '^  region'
echo "FILL saves $(( $(stat -c %s data.ms) - $(stat -c %s fill.ms) )) bytes"
"$TOOLS/migstream-replay" -q -o out fill.ms; echo "replay exit $?"
cmp out/region-0.img img.bin && echo "replayed image is the packed one"
rm -r out
"$TOOLS/migstream-pack" -q --fill -o /dev/null img.bin; echo "/dev/null exit $?"
mkfifo pipe
cat pipe > from-pipe &
"$TOOLS/migstream-pack" -q --fill -o pipe img.bin; echo "fifo exit $?"
wait
cmp from-pipe fill.ms && echo "through the FIFO: the same stream"
rm pipe from-pipe
ls -A
