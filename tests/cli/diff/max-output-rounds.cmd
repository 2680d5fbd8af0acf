# A page takes its place in the temporary files once, however often it is
# DATA again: 256 pages (1 MiB) sent as DATA in 4 rounds, ZERO between
# them, take 1 MiB a side, not 4. Compared with itself (2 MiB in all, 8 MiB
# counted page by page as they come) within 3M; within 1536K stream B does
# not fit (exit 2, saying the 2 MiB it would take).
H=$(dirname "$0")
python3 - rounds.mig "$H/../../pylib" <<'EOF' || exit
import sys
sys.path.insert(0, sys.argv[2])
from msstream import DATA, ZERO, Stream, region
s = Stream("rounds", "1")
s.regions(region(0, "ram", 0, 256 * 4096, 4096))
for r in range(4):
    s.round({0: r, 1: 0})
    if r:
        s.pages_rec(0, [(0, 256, ZERO, 0)])
    s.pages_rec(0, [(0, 256, DATA, 0)], bytes([r + 1]) * (256 * 4096))
with open(sys.argv[1], "wb") as f:
    f.write(s.end())
EOF
"$TOOLS/migstream-diff" --max-output 3M rounds.mig rounds.mig
echo "exit $?"
"$TOOLS/migstream-diff" --max-output 1536K rounds.mig rounds.mig
echo "exit $?"
