# multifd channels that cannot be read: exit 1 with the channel named, no
# output file. A missing channel (by its id, then by QEMU's packet
# numbers), the same channel twice, a truncated channel, the main stream
# given as a channel.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
head -c 5000 chan0.qemu > cut0.qemu
"$TOOLS/migstream-import" qemu -o out.ms main.qemu chan1.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms main.qemu chan0.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms main.qemu chan0.qemu chan0.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms main.qemu cut0.qemu chan1.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms main.qemu chan0.qemu main.qemu; echo "exit $?"
ls -A
