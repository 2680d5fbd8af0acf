# A QEMU migration stream is read like any stream: one cut after its file
# header is an error, named by the QEMU reader.
printf 'QEVM\0\0\0\3' >q
"$TOOLS/migstream-compat" q q
