# --json with a Xen stream (tests/xen/mkxen.py): pfn entries by page type.
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc
"$TOOLS/migstream-import" xen --json -o out.ms pv64-libxc.xen; echo "exit $?"
rm pv64-libxc.expect fixtures.txt
ls -A
