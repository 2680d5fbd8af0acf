# The way back: a Xen stream imported and exported again is the same bytes,
# and --libxl wraps the libxc stream in libxl's records.
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc
"$TOOLS/migstream-import" xen -q -o in.ms pv64-libxc.xen; echo "import exit $?"
"$TOOLS/migstream-export" xen --stats -o out.xen in.ms; echo "exit $?"
cmp out.xen pv64-libxc.xen && echo "byte-identical"
"$TOOLS/migstream-export" xen -q --libxl -o libxl.xen in.ms; echo "libxl exit $?"
"$TOOLS/migstream-dump" --summary libxl.xen | head -3
"$TOOLS/migstream-export" xen -o out.xen in.ms; echo "exists exit $?"
rm pv64-libxc.expect fixtures.txt
ls -A
