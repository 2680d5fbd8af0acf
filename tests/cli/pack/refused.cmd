# Exit 1: an input's contents are refused. No output is created.
P=$TOOLS/migstream-pack
truncate -s 4K img && printf 'xyz' > odd.img && : > empty.img
printf '{"a": 1, "a": 2}' > dup.json
printf '[1, 2' > cut.json
printf '\x82\x01' > cut.cbor
printf '\x01\x02' > two.cbor
printf '\xc1\x00' > tag.cbor
$P -o o1.mig odd.img; echo "image of 3 bytes: exit $?"
$P -o o2.mig empty.img; echo "empty image: exit $?"
$P -o o3.mig --page-size 8K img; echo "4 KiB image, 8 KiB pages: exit $?"
$P -o o4.mig --device d:s:1:dup.json img; echo "duplicate JSON key: exit $?"
$P -o o5.mig --device d:s:1:cut.json img; echo "truncated JSON: exit $?"
$P -o o6.mig --device d:s:1:cut.cbor img; echo "truncated CBOR: exit $?"
$P -o o7.mig --device d:s:1:two.cbor img; echo "two CBOR items: exit $?"
$P -o o8.mig --device d:s:1:tag.cbor img; rc=$?; echo "CBOR tag: exit $rc"
ls -A
exit $rc
