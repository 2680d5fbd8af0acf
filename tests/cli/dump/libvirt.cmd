# A libvirt save image (docs/FORMATS.md section 2): the xz image's summary,
# read from standard input; the device libvirt/domain of the image whose XML
# `virsh save-image-define` rewrote, with its UTF-8 description.
data=$(dirname "$0")/../../data/libvirt
zstd -qdc "$data/q35-xz.libvirt.zst" | $TOOLS/migstream-dump --summary -; echo "exit $?"
zstd -qdc "$data/q35-redefined.libvirt.zst" > redefined.img
$TOOLS/migstream-dump --device libvirt/domain redefined.img; echo "exit $?"
