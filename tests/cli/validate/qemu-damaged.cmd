# A damaged copy of a QEMU capture. Its JSON trailer says that cpu_common's
# "halted" takes 5 bytes and that "timer" is at version 3, and names
# port92's description port93; a byte of pckbd's section (its subsection
# marker) changed. Each is reported at its offset, in QEMU's terms: errors
# where QEMU's loader would fail, warnings where it would not. A cut copy
# stops the QEMU reader: one error with its offset. A copy with only the
# version changed is valid, with a warning.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-paused.qemu.zst" > q35.qemu
python3 - <<'PY'
d = bytearray(open("q35.qemu", "rb").read())
def change(old, new):
    assert d.count(old) == 1 and len(old) == len(new)
    i = d.find(old)
    d[i:i + len(old)] = new
change(b'"name": "halted", "type": "uint32", "size": 4}',
       b'"name": "halted", "type": "uint32", "size": 5}')
change(b'"vmsd_name": "timer", "version": 2', b'"vmsd_name": "timer", "version": 3')
change(b'"name": "port92"', b'"name": "port93"')
change(b'\x05\x14pckbd/extended_state\x00', b'\x06\x14pckbd/extended_state\x00')
open("damaged.qemu", "wb").write(d)
d = bytearray(open("q35.qemu", "rb").read())
change(b'"vmsd_name": "timer", "version": 2', b'"vmsd_name": "timer", "version": 3')
open("warned.qemu", "wb").write(d)
PY
V=$TOOLS/migstream-validate
$V damaged.qemu; echo "exit $?"
$V --json damaged.qemu; echo "exit $?"
# Only a warning: valid, unless --strict.
$V warned.qemu; echo "exit $?"
$V --strict warned.qemu | tail -n 1; echo "--strict: exit ${PIPESTATUS[0]}"
head -c 300000 q35.qemu > cut.qemu
$V cut.qemu; echo "exit $?"
