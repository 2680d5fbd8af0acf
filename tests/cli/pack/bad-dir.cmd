# Exit 1: a replay directory whose manifest is broken or does not match its
# files. The file names are derived from ids, never taken from the manifest.
P=$TOOLS/migstream-pack
"$TOOLS/migstream-replay" -o good "$SAMPLES/basic.mig" || exit
edit() { rm -rf bad && cp -r good bad && sed -i "$1" bad/manifest.json; }
edit 's/"region-0.img"/"..\/..\/etc\/passwd"/'
$P -o o1.mig bad; echo "file name changed: exit $?"
edit 's/"size": "4194304"/"size": "8192"/'
$P -o o2.mig bad; echo "size changed: exit $?"
edit 's/"schema_version": 2/"schema_version": 3/'
$P -o o3.mig bad; echo "schema_version 3: exit $?"
edit 's/"schema_version": 2/"manifest_version": 2/'
$P -o o3.mig bad; echo "manifest_version 2: exit $?"
edit 's/"size": "4194304"/"size": 4194304/'
$P -o o3.mig bad; echo "size a number: exit $?"
edit 's/"gpa": "0x0"/"gpa": 0/'
$P -o o4.mig bad; echo "gpa a number: exit $?"
edit '1s/^/x/'
$P -o o5.mig bad; echo "not JSON: exit $?"
edit 's/"x86-cpu"/"x86-cpu", "schema": "again"/'
$P -o o6.mig bad; echo "duplicate key: exit $?"
edit 's/"instance": 0,/"instance": -1,/'
$P -o o7.mig bad; echo "negative instance: exit $?"
rm -rf bad && cp -r good bad && printf '\xff' > bad/device-1.cbor
$P -o o8.mig bad; rc=$?; echo "device state not CBOR: exit $rc"
ls -A
exit $rc
