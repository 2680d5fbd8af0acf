# QEMU captures read as they are (tests/data/qemu): a paused guest, and a
# multifd one with its channel captures in any order. Valid: the QEMU
# reader's checks and each section against the JSON trailer find nothing.
# The bytes are the main stream's.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
V=$TOOLS/migstream-validate
$V q35.qemu; echo "exit $?"
$V --json q35.qemu; echo "exit $?"
$V chan1.qemu main.qemu chan0.qemu; echo "exit $?"
$V - < q35.qemu; echo "standard input: exit $?"
