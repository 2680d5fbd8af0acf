# The same capture as JSON Lines: "format" is the format's name, and what a
# record of another format does not have (length, checksum, encoding, wire
# data bytes, preamble, digest) is null. Offsets are byte offsets in the
# QEMU stream. Device states are left out here (the "state" member, last).
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
"$TOOLS/migstream-dump" --json q35.qemu | sed '/"type":"DEVICE"/s/,"state":{.*}$/}/'
