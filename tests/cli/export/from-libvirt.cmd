# A libvirt save image (zstd-compressed inside) exported as the QEMU stream
# it wraps, read through ms_open() with nothing written between: libvirt's
# header record (the domain XML) is left out, and the result is the export
# of the QEMU stream inside the raw image (which starts at byte 67140),
# from a file or from standard input.
data=$(dirname "$0")/../../data/libvirt
zstd -qdc "$data/q35-zstd.libvirt.zst" > z.img
zstd -qdc "$data/q35-raw.libvirt.zst" | tail -c +67141 > inner.qemu
"$TOOLS/migstream-export" qemu --stats -o out.qemu z.img; echo "exit $?"
"$TOOLS/migstream-export" qemu -q -o inner-out.qemu inner.qemu
cmp out.qemu inner-out.qemu && echo "the export of the inner stream"
"$TOOLS/migstream-export" qemu -q -o stdin.qemu - < z.img; echo "stdin exit $?"
cmp out.qemu stdin.qemu && echo "the same from standard input"
rm z.img inner.qemu inner-out.qemu stdin.qemu
ls -A
