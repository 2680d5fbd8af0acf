# The u64 rule (docs/OUTPUT.md): a device state's integers beyond 2^53 - 1
# are JSON strings of their decimal digits, in dump --json, diff --json and
# replay's device-N.json, so that a parser reading numbers as doubles keeps
# the exact value; smaller ones stay numbers. A region's size is a string.
printf '\xa3\x63rip\x1b\xff\xff\xff\xff\x81\x00\x00\x00\x63rsp\x1a\x7f\xff\xf0\x00\x63neg\x3b\x00\x20\x00\x00\x00\x00\x00\x00' >cpu.cbor
printf '\xa3\x63rip\x1b\xff\xff\xff\xff\x81\x00\x00\x10\x63rsp\x1a\x7f\xff\xf0\x00\x63neg\x3b\x00\x1f\xff\xff\xff\xff\xff\xfe' >cpu2.cbor
head -c 8192 /dev/zero >ram.img
P=$TOOLS/migstream-pack
$P -q -o a.mig --device cpu:x86-cpu:1:cpu.cbor ram.img || exit
$P -q -o b.mig --device cpu:x86-cpu:1:cpu2.cbor ram.img || exit
"$TOOLS/migstream-dump" --json --device cpu a.mig
"$TOOLS/migstream-dump" --json a.mig | grep -o '"size":"[0-9]*"' | head -1
"$TOOLS/migstream-diff" --json a.mig b.mig
echo "diff: exit $?"
"$TOOLS/migstream-replay" -q -o out a.mig || exit
cat out/device-0.json
