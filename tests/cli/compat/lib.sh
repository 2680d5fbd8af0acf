# Shared by the migstream-compat cases (sourced; not a case itself).
# Streams are built with migstream-pack from device states written as JSON,
# one guest page of zeros each; restamp.py changes a stream's format minor
# or required feature bits afterwards.
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
head -c 4096 /dev/zero >ram.bin

# state NAME JSON: writes NAME.json
state() { printf '%s\n' "$2" >"$1.json"; }

# stream OUT PATH:SCHEMA:VERSION:STATE ...: packs the devices into OUT
stream() {
  local out=$1 spec args=()
  shift
  for spec in "$@"; do args+=(--device "$spec.json"); done
  "$TOOLS/migstream-pack" -q -o "$out" "${args[@]}" ram.bin
}

restamp() { python3 "$here/restamp.py" "$@"; }

# The states of the "older release" and common variants.
state cpu '{"rip": 65520, "rax": 1, "flags": [true, false], "regs": {"cr0": 17, "efer": 0}}'
state net2 '{"mac": "525400123456", "queues": 2}'
state net3 '{"mac": "525400123456", "queues": 2, "mtu": 1500}'
