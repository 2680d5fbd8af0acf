# Region pairing (migstream-pack numbers regions 0, 1, ... in the order given):
# B lists the regions the other way round, so their ids are swapped but their
# names match: same. C renames region 0: paired by id, a name difference.
# D replaces region "two" (id 1) by "three" (id 1) at another address.
P=$TOOLS/migstream-pack
printf one > one.img && truncate -s 8K one.img
printf two > two.img && truncate -s 4K two.img
"$P" -q -o a.mig --region one:0:one.img --region two:1M:two.img &&
  "$P" -q -o b.mig --region two:1M:two.img --region one:0:one.img &&
  "$P" -q -o c.mig --region uno:0:one.img --region two:1M:two.img &&
  "$P" -q -o d.mig --region one:0:one.img --region three:2M:two.img || exit
"$TOOLS/migstream-diff" a.mig b.mig; echo "exit $?"
"$TOOLS/migstream-diff" a.mig c.mig; echo "exit $?"
"$TOOLS/migstream-diff" --json a.mig d.mig
