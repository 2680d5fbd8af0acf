# Usage errors: exit 2 with a pointer to --help, no output created.
"$TOOLS/migstream-import"; echo "exit $?"
"$TOOLS/migstream-import" xen -o out.ms in.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms; echo "exit $?"
"$TOOLS/migstream-import" qemu in.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu --compress 20 -o out.ms in.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -o out.ms missing.qemu; echo "exit $?"
ls -A
