# A libmigstream migration in 2 parts (gen-streams' halves.K.mig), given in
# any order, exported as it is read: the same bytes as the export of
# halves.mig, the same migration in one stream.
cd "$SAMPLES" || exit
E=$TOOLS/migstream-export
$E qemu -q -o "$OLDPWD/parts.qemu" halves.1.mig halves.0.mig; echo "exit $?"
$E qemu -q -o "$OLDPWD/one.qemu" halves.mig; echo "single stream exit $?"
cd "$OLDPWD" && cmp parts.qemu one.qemu && echo "the same bytes"
ls -A
