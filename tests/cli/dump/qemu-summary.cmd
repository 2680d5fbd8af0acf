# A QEMU capture read as it is (a paused q35 guest, tests/data/qemu): the
# totals name the format; its records have no wire bytes, so there are no
# byte counts, shares or digest. The counts are QEMU's own "duplicate" (ZERO)
# and "normal" (DATA) in q35-paused.query-migrate.json.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-dump" --summary q35.qemu; echo "exit $?"
"$TOOLS/migstream-dump" --summary --json q35.qemu; echo "exit $?"
