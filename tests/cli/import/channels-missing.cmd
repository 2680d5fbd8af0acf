# A multifd main stream from QEMU 7.2 without its channels: it holds the
# zero pages but no data page, and does not say it is multifd. The import
# succeeds with a warning.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
"$TOOLS/migstream-import" qemu -o out.ms main.qemu; echo "exit $?"
ls -A
