# Not a QEMU stream: a libmigstream stream is named as such, other bytes by
# their magic. Exit 1.
cp "$SAMPLES/basic.mig" basic.mig
"$TOOLS/migstream-import" qemu -o out.ms basic.mig; echo "exit $?"
printf 'QEVM\0\0\0\2' > old.qemu
"$TOOLS/migstream-import" qemu -o out.ms old.qemu; echo "exit $?"
printf 'hello, world' > text.qemu
"$TOOLS/migstream-import" qemu -o out.ms text.qemu; echo "exit $?"
ls -A
