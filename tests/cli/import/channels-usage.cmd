# CHANNEL arguments that cannot be used: standard input (exit 2), a file
# that does not exist (exit 2), nothing written.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
"$TOOLS/migstream-import" qemu -o out.ms main.qemu -; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms main.qemu nochan.qemu; echo "exit $?"
ls -A
