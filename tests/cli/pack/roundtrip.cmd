# pack, replay, pack gives a byte-identical stream, with and without zstd;
# and replaying then packing streams of the same final state (basic.mig,
# rebatched.mig, compressed.mig, rewritten.mig) gives one and the same stream.
P=$TOOLS/migstream-pack R=$TOOLS/migstream-replay
truncate -s 1M img
printf 'hello' | dd of=img bs=1 seek=12345 conv=notrunc status=none
head -c 300000 /dev/zero | tr '\0' 'x' | dd of=img bs=64K seek=500000 oflag=seek_bytes iflag=fullblock conv=notrunc status=none
printf '{"a": [1, 2.5, "x"]}' > dev.json
for level in 0 3; do
  $P --compress $level -o a$level.mig --region 'ram:0x100000:img' --region 'x/y:-:img' \
     --device dev:s:7:dev.json || exit
  $R -o r$level a$level.mig && $P --compress $level -o b$level.mig r$level || exit
  cmp a$level.mig b$level.mig && echo "level $level: pack, replay, pack: identical ($(stat -c %s a$level.mig) bytes)"
done
for s in basic rebatched compressed rewritten; do
  $R -o $s "$SAMPLES/$s.mig" && $P -o $s.mig $s || exit
done
cmp basic.mig rebatched.mig && cmp basic.mig compressed.mig && cmp basic.mig rewritten.mig &&
  echo "4 streams of one state: one packed stream"
$R -o again basic.mig && $P -o again.mig again && cmp basic.mig again.mig && echo "and it packs back to itself"
grep -E '"(writer_name|writer_version|machine)"' again/manifest.json
