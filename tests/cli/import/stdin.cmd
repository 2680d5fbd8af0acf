# MAIN from a pipe, OUT to a pipe (--stats then goes to standard error).
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-no-vmdesc.qemu.zst" | "$TOOLS/migstream-import" qemu --stats -o - - |
    "$TOOLS/migstream-validate" - > /dev/null
echo "exit ${PIPESTATUS[1]} ${PIPESTATUS[2]}"
