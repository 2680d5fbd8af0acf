# --progress=json: the QEMU stream's bytes, of its size.
P=$(dirname "$0")/../progress.py
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/pc-paused.qemu.zst" > pc.qemu
"$TOOLS/migstream-import" qemu --progress=json -o pc.ms pc.qemu 2>err.txt
echo "exit $?"
python3 "$P" migstream-import err.txt; cat err.txt >&2
