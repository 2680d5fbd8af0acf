# A Xen stream has a PAGE_DATA entry and 4 KiB per page: FILL pages claiming
# 8 TiB are refused before any is written, and a run of 4096 FILL pages
# sent 100 times (1.6 GB of pages) does not fit in --max-output 64M.
# Past the limit the output cannot be written: exit 2, as replay's, and
# nothing is left. (A limit that is the free space is said on a line of its
# own, left out here: it depends on the machine.)
H=$(dirname "$0")
python3 "$H/../../resources/gen.py" fill-huge 1 huge.mig || exit
python3 "$H/../../resources/gen.py" fill-repeat 5600 repeat.mig || exit
"$TOOLS/migstream-export" xen -q -o out.xen huge.mig 2>&1 |
  sed -e 's/limit of [0-9]* bytes/limit of N bytes/' -e '/that limit is the [0-9]* bytes free where/d'
echo "exit ${PIPESTATUS[0]}"
"$TOOLS/migstream-export" xen -q --max-output 64M -o out.xen repeat.mig
echo "exit $?"
ls -A
