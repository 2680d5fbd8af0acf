# A DUPLICATE page (format 1.3) names its source page and shows the bytes
# of the DATA copy its contents came from: in the golden v1.3 stream, page
# 40 took page 2's contents in record 3, before record 6 sent page 2 again
# ("golden page 0502", not "0777"); page 51 took them after. A chain of
# DUPLICATE pages is followed to the DATA copy it names: page 2 of
# chain.mig took page 1 ("A"), itself a DUPLICATE of page 0 before page 0
# became "B"; page 3 took page 0 after ("B"). JSON names the same copy.
# Standard input cannot be read twice: the source without its bytes.
H=$(dirname "$0")
V13=$H/../../compat/v1.3/duplicates.mig
"$TOOLS/migstream-dump" --page pc.ram:40 "$V13" | head -3
"$TOOLS/migstream-dump" --page pc.ram:51 "$V13" | head -2
python3 -c '
import sys; sys.path.insert(0, sys.argv[1])
from msstream import DATA, ZERO, Stream, region
DUPLICATE = 6
s = Stream("t", "1", minor=3, required=0x20)
s.regions(region(0, "ram", 0, 8 << 12, 4096))
s.pages_rec(0, [(0, 1, DATA, 0), (1, 1, DUPLICATE, 0)], b"A" * 4096)
s.pages_rec(0, [(0, 1, DATA, 0), (2, 1, DUPLICATE, 1), (3, 1, DUPLICATE, 0),
                (4, 4, ZERO, 0)], b"B" * 4096)
open("chain.mig", "wb").write(s.end())' "$H/../../pylib" || exit
"$TOOLS/migstream-dump" --page 0:2 chain.mig
"$TOOLS/migstream-dump" --page 0:3 chain.mig
for p in 2 3; do
  "$TOOLS/migstream-dump" --json --page 0:$p chain.mig >page.json || exit
  python3 -c '
import json
head, p = [json.loads(x) for x in open("page.json")]
data = bytes.fromhex(p.pop("data"))
print(json.dumps(p, sort_keys=True), set(data), len(data))'
done
"$TOOLS/migstream-dump" --page 0:2 - <chain.mig
cat chain.mig | "$TOOLS/migstream-dump" --json --page 0:2 - | tail -1
echo "exit ${PIPESTATUS[1]}"
