# Two captures of the same paused guest, taken a second apart: they differ
# in the RTC's state only (mc146818rtc), field by field. Both are QEMU
# streams, so every metadata field is compared.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > a.qemu
zstd -qdc "$data/q35-paused-again.qemu.zst" > b.qemu
"$TOOLS/migstream-diff" a.qemu b.qemu | cut -c1-160; echo "exit ${PIPESTATUS[0]}"
