# Usage errors: exit 2 with a pointer to --help, no output created.
"$TOOLS/migstream-export"; echo "exit $?"
"$TOOLS/migstream-export" xen -o out.qemu in.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu; echo "exit $?"
"$TOOLS/migstream-export" qemu in.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu --machine= -o out.qemu in.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu --bogus -o out.qemu in.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu -o out.qemu missing.ms; echo "exit $?"
ls -A
