# Bad usage: exit 2 with a message and a hint on standard error.
P=$TOOLS/migstream-pack
truncate -s 8K img && "$TOOLS/migstream-replay" -o dir "$SAMPLES/empty-guest.mig" || exit
$P img; echo "no -o: exit $?"
$P -o o.mig; echo "no input: exit $?"
$P -o o.mig img img; echo "two inputs: exit $?"
$P -o o.mig --region r:0:img img; echo "--region and IMAGE: exit $?"
$P -o o.mig --region r:img; echo "--region without BASE: exit $?"
$P -o o.mig --region r:0x:img; echo "--region bad BASE: exit $?"
$P -o o.mig --region a:0:img --region b:0x1000:img; echo "overlapping regions: exit $?"
$P -o o.mig --device d:s:x:img img; echo "--device bad VERSION: exit $?"
$P -o o.mig --device d:s:img img; echo "--device without VERSION: exit $?"
$P -o o.mig --device d:s:1:img --device d:t:2:img img; echo "a device twice: exit $?"
$P -o o.mig --device d:s:1:img dir; echo "--device with DIR: exit $?"
$P -o o.mig --page-size 64K dir; echo "--page-size with DIR: exit $?"
$P -o o.mig --page-size 3000 img; echo "--page-size 3000: exit $?"
$P -o o.mig --page-size 32M img; echo "--page-size 32M: exit $?"
$P -o o.mig --compress 20 img; echo "--compress 20: exit $?"
$P -o o.mig --threads 65 img; echo "--threads 65: exit $?"
$P -o o.mig --bogus img; echo "unknown option: exit $?"
$P -o o.mig img --compress; rc=$?; echo "--compress without a value: exit $rc"
ls -A
exit $rc
