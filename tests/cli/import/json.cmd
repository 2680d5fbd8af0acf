# --json: the --stats summary as JSON Lines (docs/OUTPUT.md), on standard
# output, or on standard error when OUT is standard output. A multifd
# capture (tests/data/qemu) names its channels' inputs.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
"$TOOLS/migstream-import" qemu --json -o out.ms main.qemu chan1.qemu chan0.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -q --stats --json -o - main.qemu chan0.qemu chan1.qemu 2>&1 >/dev/null
echo "stdout exit $?"
ls -A
