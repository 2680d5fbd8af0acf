# A paused q35 guest captured from QEMU 7.2: imported, exported back with
# --stats (the counts are the import's: 8269 zero and 53 normal pages), and
# the export imported again with the same counts.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-import" qemu -q -o q35.ms q35.qemu; echo "import exit $?"
"$TOOLS/migstream-export" qemu --stats -o out.qemu q35.ms; echo "exit $?"
"$TOOLS/migstream-import" qemu -q --stats -o back.ms out.qemu; echo "re-import exit $?"
head -c 19 out.qemu | od -An -c
ls -A
