# A multifd migration captured from QEMU 7.2 (tests/data/qemu): the main
# stream and its two channel connections, given in any order. The counts are
# QEMU's own "duplicate" and "normal" (q35-multifd.query-migrate.json), the
# same as the plain capture of the same guest (q35.cmd).
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
"$TOOLS/migstream-import" qemu --stats -o out.ms main.qemu chan1.qemu chan0.qemu; echo "exit $?"
"$TOOLS/migstream-validate" out.ms > /dev/null; echo "validate exit $?"
ls -A
