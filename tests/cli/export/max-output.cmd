# QEMU's stream has an item per page. FILL pages claiming 8 TiB are refused
# before any item is written (1 TiB by default, and never past the free
# space); a run of 4096 FILL pages sent 100 times takes 1.6 GB of items, not
# within --max-output 64M. Nothing is left either way.
H=$(dirname "$0")
python3 "$H/../../resources/gen.py" fill-huge 1 huge.mig || exit
python3 "$H/../../resources/gen.py" fill-repeat 5600 repeat.mig || exit
"$TOOLS/migstream-export" qemu -q -o out.qemu huge.mig 2>&1 | sed 's/limit of [0-9]* bytes/limit of N bytes/'
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-export" qemu -q --max-output 64M -o out.qemu repeat.mig
echo "exit $?"
ls -A
