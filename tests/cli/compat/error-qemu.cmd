# A QEMU stream is neither kind.
printf 'QEVM\0\0\0\3' >q
"$TOOLS/migstream-compat" q q
