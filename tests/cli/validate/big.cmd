# 4 GiB guest (mostly zero) through a pipe: peak RSS must stay below 64 MiB.
set -o pipefail
[ -x /usr/bin/time ] || { echo "needs GNU time (package time)"; exit 3; }
"$GEN" --big 4 | /usr/bin/time -f %M -o rss.txt "$TOOLS/migstream-validate" - || exit
"$GEN" --big 4 | /usr/bin/time -f %M -o rss2.txt "$TOOLS/migstream-validate" --json --strict - || exit
for f in rss.txt rss2.txt; do
  kib=$(tail -n 1 $f)
  [ "$kib" -lt 65536 ] || { echo "peak RSS $kib KiB is not below 64 MiB"; exit 1; }
done
echo "peak RSS below 64 MiB"
