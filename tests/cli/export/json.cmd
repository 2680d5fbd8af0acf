# --json: the --stats summary as JSON Lines (docs/OUTPUT.md); the pages by
# the state read, with FILL pages (import --fill) among them.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-import" qemu -q --fill -o q35.ms q35.qemu; echo "import exit $?"
"$TOOLS/migstream-export" qemu --json -o out.qemu q35.ms; echo "exit $?"
"$TOOLS/migstream-export" qemu -q --json -o - q35.ms 2>&1 >/dev/null; echo "stdout exit $?"
ls -A
