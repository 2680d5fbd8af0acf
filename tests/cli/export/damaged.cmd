# A truncated stream, a flipped byte, a QEMU stream given as STREAM: exit 1,
# no output file.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" > pc.qemu
"$TOOLS/migstream-import" qemu -q -o pc.ms pc.qemu
head -c 100000 pc.ms > cut.ms
"$TOOLS/migstream-export" qemu -o out.qemu cut.ms; echo "exit $?"
cp pc.ms flipped.ms
printf '\377' | dd of=flipped.ms bs=1 seek=5000 conv=notrunc status=none
"$TOOLS/migstream-export" qemu -o out.qemu flipped.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu pc.qemu; echo "exit $?"
ls -A
