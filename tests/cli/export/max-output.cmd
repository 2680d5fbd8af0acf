# QEMU's stream has an item per page. FILL pages claiming 8 TiB are refused
# before any item is written (1 TiB by default, and never past the free
# space); a run of 4096 FILL pages sent 100 times takes 1.6 GB of items, not
# within --max-output 64M. Past the limit the output cannot be written:
# exit 2, as replay's, and nothing is left. (A limit that is the free
# space is said on a line of its own, left out here: it depends on the
# machine.)
H=$(dirname "$0")
python3 "$H/../../resources/gen.py" fill-huge 1 huge.mig || exit
python3 "$H/../../resources/gen.py" fill-repeat 5600 repeat.mig || exit
"$TOOLS/migstream-export" qemu -q -o out.qemu huge.mig 2>&1 |
  sed -e 's/limit of [0-9]* bytes/limit of N bytes/' -e '/that limit is the [0-9]* bytes free where/d'
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-export" qemu -q --max-output 64M -o out.qemu repeat.mig
echo "exit $?"
ls -A
