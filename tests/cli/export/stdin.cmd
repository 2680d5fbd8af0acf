# STREAM from a pipe, OUT to a pipe (--stats then goes to standard error);
# --machine overrides the stream's machine type, --no-vmdesc drops the
# trailer.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-no-vmdesc.qemu.zst" | "$TOOLS/migstream-import" qemu -q -o - - |
    "$TOOLS/migstream-export" qemu --stats --no-vmdesc --machine q35 -o - - > out.qemu
echo "exit ${PIPESTATUS[1]} ${PIPESTATUS[2]}"
head -c 15 out.qemu | od -An -c
"$TOOLS/migstream-import" qemu -q --stats -o back.ms out.qemu | grep -E '^(machine|json)'
