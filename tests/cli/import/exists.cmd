# An existing OUT is kept unless --force; no temporary file is left.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" > pc.qemu
echo keep > out.ms
"$TOOLS/migstream-import" qemu -o out.ms pc.qemu; echo "exit $?"
cat out.ms
"$TOOLS/migstream-import" qemu --force -o out.ms pc.qemu; echo "--force: exit $?"
"$TOOLS/migstream-validate" out.ms > /dev/null; echo "validate exit $?"
ls -A
