# A sparse image's holes become ZERO pages without being read: a 64 GiB file
# made with truncate (reading it would take minutes) packs in a moment into a
# small stream. A sparse image and a fully written copy of it give the same
# stream.
truncate -s 64G big.img
printf 'hello' | dd of=big.img bs=1 seek=$((5 << 30)) conv=notrunc status=none
start=$(date +%s)
"$TOOLS/migstream-pack" -o big.mig big.img || exit
[ $(( $(date +%s) - start )) -le 10 ] && echo "64 GiB packed in at most 10 s"
echo "stream: $(stat -c %s big.mig) bytes"
"$TOOLS/migstream-replay" -o out big.mig || exit
grep -E '"(size|data|zero)"' out/manifest.json
truncate -s 8M small.img
printf 'a' | dd of=small.img bs=1 seek=1000 conv=notrunc status=none
head -c 3000000 /dev/urandom | dd of=small.img bs=64K seek=4000000 oflag=seek_bytes iflag=fullblock conv=notrunc status=none
cp --sparse=never small.img full.img
[ $(stat -c %b full.img) -gt $(stat -c %b small.img) ] && echo "full.img holds more blocks than small.img"
"$TOOLS/migstream-pack" -o small.mig small.img && "$TOOLS/migstream-pack" -o full.mig full.img || exit
cmp small.mig full.mig && echo "sparse and full copies: same stream"
