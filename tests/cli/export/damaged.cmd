# A truncated stream, a flipped byte, a file that is no stream of any
# format this build reads: exit 1, no output file. (A QEMU stream is
# exported as it is read: from-qemu.)
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" > pc.qemu
"$TOOLS/migstream-import" qemu -q -o pc.ms pc.qemu
head -c 100000 pc.ms > cut.ms
"$TOOLS/migstream-export" qemu -o out.qemu cut.ms; echo "exit $?"
cp pc.ms flipped.ms
printf '\377' | dd of=flipped.ms bs=1 seek=5000 conv=notrunc status=none
"$TOOLS/migstream-export" qemu -o out.qemu flipped.ms; echo "exit $?"
head -c 4096 /dev/zero > zeros.bin
"$TOOLS/migstream-export" qemu -o out.qemu zeros.bin; echo "exit $?"
rm zeros.bin
ls -A
