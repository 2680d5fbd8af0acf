# multifd channels compressed by QEMU 7.2 (multifd-compression zlib, then
# zstd; tests/data/qemu): the same counts as the uncompressed capture of the
# same guest (channels.cmd), QEMU's own "duplicate" and "normal".
data=$(dirname "$0")/../../data/qemu
for m in zlib zstd; do
    zstd -qdc "$data/q35-multifd-$m.qemu.zst" > main-$m.qemu
    zstd -qdc "$data/q35-multifd-$m.chan0.qemu.zst" > chan0-$m.qemu
    zstd -qdc "$data/q35-multifd-$m.chan1.qemu.zst" > chan1-$m.qemu
    "$TOOLS/migstream-import" qemu --stats -o out-$m.ms main-$m.qemu chan0-$m.qemu \
        chan1-$m.qemu; echo "exit $?"
    "$TOOLS/migstream-validate" out-$m.ms > /dev/null; echo "validate exit $?"
done
# A damaged compressed payload: exit 1, the channel, packet and offset named.
head -c 2752 chan0-zlib.qemu > bad0.qemu
printf '\377\377\377\377' >> bad0.qemu
tail -c +2757 chan0-zlib.qemu >> bad0.qemu
"$TOOLS/migstream-import" qemu -o bad.ms main-zlib.qemu bad0.qemu chan1-zlib.qemu; echo "exit $?"
ls -A
