# Names from a stream reach messages with their control characters escaped
# (\xNN): a region named "ram" ESC "[2J" BEL, whose DATA page does not fit
# in --max-output 1K, is named so, and no raw ESC or BEL reaches the output.
H=$(dirname "$0")
python3 -c '
import sys; sys.path.insert(0, sys.argv[1])
from msstream import DATA, Stream, region
s = Stream("t", "1")
s.regions(region(0, "ram\x1b[2J\x07", 0, 1 << 20, 4096))
s.pages_rec(0, [(0, 1, DATA, 0)], b"\x5a" * 4096)
open("esc.mig", "wb").write(s.end())' "$H/../../pylib" || exit
"$TOOLS/migstream-diff" --max-output 1K esc.mig esc.mig 2>err
echo "exit $?"
cat err
echo "raw controls: $(LC_ALL=C grep -c $'[\x1b\x07]' err)"
# migstream-validate's warning about the region's pages never sent names it
# the same way.
"$TOOLS/migstream-validate" esc.mig >out 2>&1
grep -o 'region 0 "ram[^"]*"' out | head -1
echo "raw controls: $(LC_ALL=C grep -c $'[\x1b\x07]' out)"
