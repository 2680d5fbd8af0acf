# A file with QEMU's magic that is no QEMU stream: damaged after its magic,
# so B holds nothing; the QEMU reader says where (exit 1). Errors, exit 2: a
# channel given to a libmigstream stream; a channel alone; standard input
# twice.
data=$(dirname "$0")/../../data/qemu
printf "QEVM\0\0\0\3 this is no libmigstream stream at all, but long enough for a header %0100d" 0 > qemu.bin
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
cp "$SAMPLES/basic.mig" basic.mig
D=$TOOLS/migstream-diff
$D basic.mig qemu.bin; echo "not QEMU: exit $?"
$D basic.mig --with-b chan0.qemu basic.mig; echo "channel of a libmigstream stream: exit $?"
$D basic.mig chan0.qemu; echo "channel alone: exit $?"
$D --with-a - basic.mig - < basic.mig; echo "standard input twice: exit $?"
