# A libvirt save image against the QEMU stream inside it, which starts at
# byte 67140 (92 bytes of header, data_len 67048): the same guest. Only the
# metadata and the device libvirt/domain (the domain XML and cookie) differ.
data=$(dirname "$0")/../../data/libvirt
zstd -qdc "$data/q35-raw.libvirt.zst" > raw.img
tail -c +67141 raw.img > inner.qemu
$TOOLS/migstream-diff raw.img inner.qemu; echo "exit $?"
