# A multifd QEMU capture exported with its channel files (in any order):
# read through ms_open() as one stream, with no libmigstream stream
# between, the same bytes as the export of its import; the progress counts
# every input. A missing or truncated channel: exit 1, the channel named,
# no output.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
E=$TOOLS/migstream-export
$E qemu --stats --progress=json -o direct.qemu chan1.qemu main.qemu chan0.qemu 2> progress.txt
echo "exit $?"
tail -n 1 progress.txt | grep -q "\"bytes\":$(cat main.qemu chan0.qemu chan1.qemu | wc -c),\"total\"" &&
  echo "progress over every input"
"$TOOLS/migstream-import" qemu -q -o imported.ms main.qemu chan0.qemu chan1.qemu
$E qemu -q -o via.qemu imported.ms; echo "via import exit $?"
cmp direct.qemu via.qemu && echo "the same bytes"
head -c 5000 chan0.qemu > cut0.qemu
$E qemu -o out.qemu main.qemu chan1.qemu; echo "missing channel exit $?"
$E qemu -o out.qemu main.qemu cut0.qemu chan1.qemu; echo "truncated channel exit $?"
rm main.qemu chan0.qemu chan1.qemu cut0.qemu imported.ms via.qemu progress.txt
ls -A
