# A multifd capture: the main stream and its two channel captures, given in
# any order (the first argument is a channel). The text dump shows each
# record (its offset is in the input it came from: the main stream, or a
# channel for the pages of its packets), the same whatever the order; then
# the totals as JSON.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
D=$TOOLS/migstream-dump
$D chan1.qemu main.qemu chan0.qemu | sed -E 's/( state-size [0-9]+) state .*/\1/' | tee one.txt
echo "exit ${PIPESTATUS[0]}"
$D main.qemu chan0.qemu chan1.qemu | sed -E 's/( state-size [0-9]+) state .*/\1/' | cmp - one.txt &&
  echo "the same in another order"
$D --summary --json chan0.qemu chan1.qemu main.qemu; echo "exit $?"
