# --progress=json: the stream's bytes, of its size.
P=$(dirname "$0")/../progress.py
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" | "$TOOLS/migstream-import" qemu -q -o pc.ms - || exit
"$TOOLS/migstream-export" qemu --progress=json -o out.qemu pc.ms 2>err.txt
echo "exit $?"
python3 "$P" migstream-export err.txt; cat err.txt >&2
