# Images are sparse: every all-zero page is a hole and every other page is
# stored (SEEK_DATA/SEEK_HOLE, holes.py), including pages that were DATA and
# later ZERO (rewritten.mig sends pages 200..215 as 0x77 first), and
# st_blocks shows it.
H=$(dirname "$0")
R=$TOOLS/migstream-replay
$R -o basic "$SAMPLES/basic.mig" && $R -o rewritten "$SAMPLES/rewritten.mig" || exit
python3 "$H/holes.py" 4096 basic/region-0.img basic/region-1.img rewritten/region-0.img || exit
# 291 and 1 non-zero pages (see basic.stdout), plus room for file system metadata
for f in basic/region-0.img:291 basic/region-1.img:1 rewritten/region-0.img:291; do
  img=${f%:*} pages=${f#*:}
  size=$(stat -c %s $img) used=$(( $(stat -c %b $img) * 512 ))
  if [ $used -le $(( (pages + 4) * 4096 )) ]; then
    echo "$img: $size bytes, at most $pages+4 pages allocated"
  else
    echo "$img: $size bytes, $used allocated: NOT SPARSE"
  fi
done
