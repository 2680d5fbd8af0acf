# Inputs that are not the parts of one migration (a part of another
# migration, a part missing, a part given twice): exit 2, the library's
# message naming the parts, as in every reading tool. A part whose records
# a QEMU stream cannot carry: exit 1, the part named. No output in any case.
cd "$SAMPLES" || exit
E=$TOOLS/migstream-export
$E qemu -o "$OLDPWD/out.qemu" halves.0.mig other.1.mig; echo "another migration exit $?"
$E qemu -o "$OLDPWD/out.qemu" parts.0.mig parts.1.mig; echo "a part missing exit $?"
$E qemu -o "$OLDPWD/out.qemu" halves.0.mig halves.0.mig; echo "a part twice exit $?"
$E qemu -o "$OLDPWD/out.qemu" parts.2.mig parts.0.mig parts.1.mig; echo "IN_PLACE exit $?"
cd "$OLDPWD" && ls -A
