# A truncated QEMU stream: exit 1, the offset and section in the message,
# no output file.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" | head -c 100000 > cut.qemu
"$TOOLS/migstream-import" qemu -o out.ms cut.qemu; echo "exit $?"
zstd -qdc "$data/q35-paused.qemu.zst" | head -c 368000 > cut2.qemu
"$TOOLS/migstream-import" qemu -o out.ms cut2.qemu; echo "exit $?"
ls -A
