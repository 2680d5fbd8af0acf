# A paused q35 guest captured from QEMU 7.2 (tests/data/qemu): imported with
# --stats, then checked by migstream-validate. The zero and normal counts
# are QEMU's own "duplicate" and "normal" (q35-paused.query-migrate.json).
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-import" qemu --stats -o out.ms q35.qemu; echo "exit $?"
"$TOOLS/migstream-validate" out.ms > /dev/null; echo "validate exit $?"
ls -A
