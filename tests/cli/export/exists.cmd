# An existing OUT is kept unless --force; no temporary file is left.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" | "$TOOLS/migstream-import" qemu -q -o pc.ms -
echo keep > out.qemu
"$TOOLS/migstream-export" qemu -o out.qemu pc.ms; echo "exit $?"
cat out.qemu
"$TOOLS/migstream-export" qemu --force -o out.qemu pc.ms; echo "--force: exit $?"
"$TOOLS/migstream-import" qemu -q -o back.ms out.qemu; echo "re-import exit $?"
ls -A
