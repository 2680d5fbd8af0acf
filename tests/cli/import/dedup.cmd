# --dedup and --window (format 1.3) on a real capture (tests/data/qemu): the
# stream validates and holds the same pages as the plain import.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-import" qemu -q -o plain.ms q35.qemu || exit
"$TOOLS/migstream-import" qemu -q --dedup --window --compress 1 -o small.ms q35.qemu || exit
"$TOOLS/migstream-validate" small.ms | tail -n 1
"$TOOLS/migstream-diff" plain.ms small.ms | tail -n 1
"$TOOLS/migstream-dump" --json small.ms | grep -m 1 -o '"required_features":"[0-9a-fx]*"'
