# A PV guest's Xen migration stream v2 (libxc, written from Xen's spec by
# tests/xen/mkxen.py): imported with --stats, then checked by
# migstream-validate and compared by effect with the Xen stream itself.
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc
"$TOOLS/migstream-import" xen --stats -o out.ms pv64-libxc.xen; echo "exit $?"
"$TOOLS/migstream-validate" out.ms > /dev/null; echo "validate exit $?"
"$TOOLS/migstream-diff" pv64-libxc.xen out.ms; echo "diff exit $?"
rm pv64-libxc.expect fixtures.txt
ls -A
