# --threads changes nothing in the stream, compressed or not; --page-size sets the regions' page size (and
# the stream's base page size, at most 64 KiB); --compress shrinks
# compressible pages and replays to the same image.
P=$TOOLS/migstream-pack
head -c 2M /dev/zero | tr '\0' 'a' > img
$P -o plain.mig img && $P --threads 1 -o t1.mig img && cmp plain.mig t1.mig && echo "--threads 1: same stream"
$P --compress 3 -o z.mig img || exit
$P --compress 3 --threads 2 -o z2.mig img && cmp z.mig z2.mig && echo "--threads 2: same compressed stream"
[ $(stat -c %s z.mig) -lt 100000 ] && echo "--compress 3: $(stat -c %s plain.mig) bytes down to under 100000"
"$TOOLS/migstream-replay" -o z z.mig && cmp img z/region-0.img && echo "compressed stream replays to img"
$P --page-size 2M -o big-pages.mig img && "$TOOLS/migstream-replay" -o bp big-pages.mig || exit
grep -E '"page_size"|"pages"' bp/manifest.json
cmp img bp/region-0.img && echo "2 MiB pages: image back"
