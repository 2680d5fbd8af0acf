# Inputs that make no stream, exit 2 with the input named: a multifd
# channel alone, a channel beside a libmigstream stream, two main streams,
# a file given twice; and inputs no format recognizes (exit 2: the stream
# cannot be read), alone and beside a QEMU stream.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
cp "$SAMPLES/basic.mig" basic.mig
echo "hello, world" > text.txt
D=$TOOLS/migstream-dump
$D --summary chan0.qemu; echo "channel alone: exit $?"
$D --summary basic.mig chan0.qemu; echo "channel with a libmigstream stream: exit $?"
$D --summary main.qemu q35.qemu chan0.qemu; echo "two QEMU streams: exit $?"
$D --summary basic.mig q35.qemu; echo "two formats: exit $?"
$D --summary main.qemu chan0.qemu main.qemu; echo "a file twice: exit $?"
$D --summary text.txt; echo "junk: exit $?"
$D --summary main.qemu text.txt; echo "junk with a QEMU stream: exit $?"
