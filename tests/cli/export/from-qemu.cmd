# A QEMU stream given as STREAM is read through ms_open() and exported as
# it is read, with no libmigstream stream between: the same bytes as the
# export of its import. A Xen stream needs regions declared before the
# first page, which QEMU's RAM block table asks for (exit 1, nothing left).
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-export" qemu --stats -o direct.qemu q35.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -q -o q35.ms q35.qemu
"$TOOLS/migstream-export" qemu -q -o via.qemu q35.ms; echo "via import exit $?"
cmp direct.qemu via.qemu && echo "the same bytes"
rm q35.qemu q35.ms via.qemu
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc > /dev/null
"$TOOLS/migstream-export" qemu -o out.qemu pv64-libxc.xen; echo "from xen exit $?"
rm pv64-libxc.expect fixtures.txt
ls -A
