# --json with a Xen stream: the records and pfn entries written, by type.
python3 "$(dirname "$0")/../../xen/mkxen.py" . pv64-libxc
"$TOOLS/migstream-import" xen -q -o in.ms pv64-libxc.xen; echo "import exit $?"
"$TOOLS/migstream-export" xen --json --verifiable -o out.xen in.ms; echo "exit $?"
rm pv64-libxc.expect fixtures.txt
ls -A
