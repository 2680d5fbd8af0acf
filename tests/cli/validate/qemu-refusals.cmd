# Inputs that make no stream: exit 2, nothing on standard output, the input
# named. A multifd channel alone; two main streams.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
V=$TOOLS/migstream-validate
$V chan0.qemu; echo "channel alone: exit $?"
$V main.qemu chan0.qemu q35.qemu; echo "two main streams: exit $?"
