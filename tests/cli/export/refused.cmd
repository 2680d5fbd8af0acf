# What a QEMU stream cannot carry: exit 1, the record and what is wrong
# named, no output file.
cp "$SAMPLES/basic.mig" "$SAMPLES/in-place-overlap.mig" "$SAMPLES/live.mig" .
"$TOOLS/migstream-export" qemu -o out.qemu basic.mig; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu in-place-overlap.mig; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu live.mig; echo "exit $?"
ls -A
