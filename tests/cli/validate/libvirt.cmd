# libvirt save images (docs/FORMATS.md section 2), from tests/data/libvirt:
# the gzip image is valid; the lzop image is refused with the command that
# decompresses its QEMU stream; a copy cut in its gzip data says where; a
# byte in the padding after the cookie is a warning, as libvirt ignores it
# (invalid with --strict).
data=$(dirname "$0")/../../data/libvirt
zstd -qdc "$data/q35-gzip.libvirt.zst" > gzip.img
zstd -qdc "$data/q35-lzop.libvirt.zst" > lzop.img
head -c 150000 gzip.img > cut.img
python3 - <<'PY'
d = bytearray(open("gzip.img", "rb").read())
assert d[67130] == 0
d[67130] = 0x55
open("padded.img", "wb").write(d)
PY
V=$TOOLS/migstream-validate
$V gzip.img; echo "exit $?"
$V lzop.img; echo "exit $?"
$V cut.img; echo "exit $?"
$V padded.img; echo "exit $?"
$V --strict --json padded.img; echo "exit $?"
