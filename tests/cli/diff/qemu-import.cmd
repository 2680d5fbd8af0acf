# A QEMU capture against its libmigstream import: the same guest (exit 0),
# though the containers differ (format, writer, description, features):
# across formats only the page size and machine are compared. A multifd
# capture with its channels (--with-a, any order) against its import, in
# JSON; the other way round too.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
"$TOOLS/migstream-import" qemu -q -o q35.mig q35.qemu || exit
"$TOOLS/migstream-import" qemu -q -o multifd.mig main.qemu chan0.qemu chan1.qemu || exit
D=$TOOLS/migstream-diff
$D q35.qemu q35.mig; echo "exit $?"
$D --json --with-a chan1.qemu main.qemu --with-a chan0.qemu multifd.mig; echo "exit $?"
$D multifd.mig main.qemu --with-b chan0.qemu --with-b chan1.qemu; echo "exit $?"
# Without its channels, the multifd capture lacks the pages they carried.
$D main.qemu multifd.mig | tail -n 3; echo "exit ${PIPESTATUS[0]}"
