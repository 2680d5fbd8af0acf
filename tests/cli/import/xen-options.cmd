# Options of one format given with the other, and a QEMU stream given as Xen.
"$TOOLS/migstream-import" xen --raw-only -o out.ms in.xen; echo "exit $?"
printf 'QEVM\0\0\0\3' > q.qemu
"$TOOLS/migstream-import" xen -o out.ms q.qemu; echo "exit $?"
ls -A
