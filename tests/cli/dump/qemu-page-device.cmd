# --page and --device on a QEMU capture: the last copy's record and its
# offset in the QEMU stream.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-dump" --page pc.ram:256 q35.qemu | head -4
"$TOOLS/migstream-dump" --device timer q35.qemu; echo "exit $?"
"$TOOLS/migstream-dump" --json --device dma q35.qemu | cut -c1-200; echo "exit $?"
