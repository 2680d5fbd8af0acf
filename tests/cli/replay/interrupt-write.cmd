# SIGTERM while the tool writes one long FILL extent (2 GiB, written once the
# stream is read): the write stops within a moment, the temporary directory
# is removed and no output is published; the tool dies of the signal.
H=$(dirname "$0")
python3 -c '
import sys; sys.path.insert(0, sys.argv[1])
from msstream import F_FILL, FILL, Stream, region
s = Stream("t", "1", minor=1, required=F_FILL)
s.regions(region(0, "ram", 0, 1 << 31, 4096))
s.pages_rec(0, [(0, 1 << 19, FILL, 0x0123456789abcdef)])
open("fill.mig", "wb").write(s.end())' "$H/../../pylib" || exit
"$TOOLS/migstream-replay" -q -o out fill.mig & pid=$!
# Waits until the image holds some of the pattern, then stops the run.
for i in $(seq 2000); do
  img=$(compgen -G 'out.tmp-*/region-0.img') && [ "$(stat -c %b "$img")" -gt 2048 ] && break
  sleep 0.005
done
kill -TERM $pid
start=$(date +%s%N)
wait $pid
echo "exit $?"
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 2000 ] && echo "stopped within 2 s"
ls -A
