# Learning from QEMU captures as they are: their device sections are
# devices of their vmsd names. A guest with two network cards and a slirp
# netdev (q35-devices) against one without: three devices gone. A capture
# against its own import: compatible. A directory's multifd channel is no
# stream by itself: skipped with a note.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-devices.qemu.zst" > devices.qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-import" qemu -q -o q35.mig q35.qemu || exit
C=$TOOLS/migstream-compat
$C devices.qemu q35.qemu; echo "exit $?"
$C q35.qemu q35.mig; echo "exit $?"
mkdir old
zstd -qdc "$data/q35-multifd.qemu.zst" > old/main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > old/main.chan0.qemu
$C --json old q35.mig; echo "exit $?"
