# multifd channel captures are not read yet: exit 2.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > main.qemu
"$TOOLS/migstream-import" qemu -o out.ms main.qemu chan1.qemu; echo "exit $?"
ls -A
