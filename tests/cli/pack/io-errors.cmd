# Exit 2: inputs that cannot be read, an output that cannot be created.
P=$TOOLS/migstream-pack
truncate -s 4K img && mkdir empty-dir
$P -o o1.mig nope.img; echo "missing image: exit $?"
$P -o o2.mig --device d:s:1:nope.cbor img; echo "missing device file: exit $?"
$P -o o3.mig empty-dir; echo "directory without a manifest: exit $?"
$P -o o4.mig --region r:0:-; echo "image on standard input: exit $?"
$P -o no/such/dir/o5.mig img; rc=$?; echo "output directory missing: exit $rc"
ls -A
exit $rc
