# Streams that describe the same final state as basic.mig (other batching and
# device order, zstd, stale pages sent first, a skipped private record) give
# byte-identical images and device files; their manifests differ from
# basic.mig's only in what describes the stream itself.
R=$TOOLS/migstream-replay
$R -o basic "$SAMPLES/basic.mig" || exit
for s in rebatched compressed rewritten unknown-optional; do
  $R -o $s "$SAMPLES/$s.mig" || echo "$s: exit $?"
  echo "== $s: $(ls $s | tr '\n' ' ')"
  for f in region-0.img region-1.img device-0.cbor device-0.json device-1.cbor device-1.json; do
    cmp basic/$f $s/$f >/dev/null && echo "$f same" || echo "$f DIFFERS"
  done
  diff basic/manifest.json $s/manifest.json
done
exit 0
