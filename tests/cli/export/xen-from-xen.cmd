# A Xen stream given as STREAM is read through ms_open() and exported as it
# is read: the same bytes back, with no libmigstream stream between; with
# --libxl, wrapped. A QEMU stream's RAM has no guest-physical address,
# which Xen's PAGE_DATA needs (exit 1, nothing left).
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc > /dev/null
"$TOOLS/migstream-export" xen --stats -o out.xen pv64-libxc.xen; echo "exit $?"
cmp out.xen pv64-libxc.xen && echo "byte-identical"
"$TOOLS/migstream-export" xen -q --libxl -o libxl.xen - < pv64-libxc.xen; echo "stdin exit $?"
"$TOOLS/migstream-dump" --summary libxl.xen | head -2
rm out.xen libxl.xen pv64-libxc.expect fixtures.txt
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-export" xen -o out.xen q35.qemu; echo "from qemu exit $?"
ls -A
