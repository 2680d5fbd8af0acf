# A build without the QEMU module imports Xen streams only, and says so.
printf 'QEVM\0\0\0\3' > q.qemu
"$TOOLS/migstream-import" qemu -o out.ms q.qemu; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu q.qemu; echo "export exit $?"
ls -A
