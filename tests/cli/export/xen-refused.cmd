# A stream that did not come from Xen cannot go back to Xen, and options of
# the QEMU export are refused with xen.
cp "$SAMPLES/basic.mig" .
"$TOOLS/migstream-export" xen -o out.xen basic.mig; echo "exit $?"
"$TOOLS/migstream-export" xen --machine pc -o out.xen "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-export" qemu --libxl -o out.qemu "$SAMPLES/basic.mig"; echo "exit $?"
ls -A
