# --dedup sends pages equal to earlier ones as DUPLICATE references and
# --window compresses each batch with the previous one as its window (both
# format 1.3): the streams replay to the same image, validate, and say so in
# their preambles; --dedup-pages bounds the table; without them the stream
# is format 1.1. The image: 16 distinct pages of text, the same 16 again,
# page 3 once more, and zeros.
P=$TOOLS/migstream-pack
for i in $(seq 0 15); do
  yes "page $i of the first copy, with some words to compress" | head -c 4096
done > first
cat first first > img
dd if=first bs=4096 skip=3 count=1 status=none >> img
truncate -s 256K img
$P -o plain.mig img || exit
$P --dedup -o dedup.mig img || exit
$P --dedup --window --compress 3 -o both.mig img || exit
for s in plain dedup both; do
  "$TOOLS/migstream-validate" $s.mig | tail -n 1
  "$TOOLS/migstream-replay" -o out-$s $s.mig && cmp img out-$s/region-0.img && echo "$s: replays to img"
  "$TOOLS/migstream-dump" --json $s.mig | grep -m 1 -o '"format":"[0-9.]*","major":1,"minor":[0-9]*,"required_features":"[0-9a-fx]*"'
done
"$TOOLS/migstream-dump" --summary dedup.mig | grep region
[ $(stat -c %s dedup.mig) -lt $(stat -c %s plain.mig) ] && echo "dedup.mig is smaller than plain.mig"
"$TOOLS/migstream-dump" --page ram:20 dedup.mig | head -n 1
$P --dedup-pages 1 -o one.mig img && "$TOOLS/migstream-replay" -o out-one one.mig && cmp img out-one/region-0.img && echo "--dedup-pages 1: replays to img"
$P --dedup-pages 0 -o bad.mig img
echo "exit $?"
