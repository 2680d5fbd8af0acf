# A file that is not a libmigstream stream.
printf "QEVM\0\0\0\3 this is no libmigstream stream at all, but long enough for a header %0100d" 0 > qemu.bin
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" qemu.bin
