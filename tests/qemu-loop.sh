#!/usr/bin/env bash
# The round trip through a real QEMU (docs/QEMU.md section 7.3):
#
#   tests/qemu-loop.sh TOOLS_DIR
#
# For each guest below: a source QEMU migrates to a file ("exec:cat > F") and
# saves its whole RAM (pmemsave); migstream-import qemu, migstream-validate,
# migstream-replay and migstream-export qemu run on the capture; a destination
# QEMU with the same command line (plus -S, so that it does not run on, and
# -incoming defer) loads the exported stream ("exec:cat F"); its RAM must equal
# the source's byte for byte, and the replayed pc.ram image must hold the same
# bytes outside the legacy VGA/BIOS window (0xa0000-0xfffff, where the address
# space shows ROM and VGA instead of pc.ram).
#
# Guests: q35 and pc paused at reset with a known 8 KiB pattern at 0x100000
# (-device loader); pc running a boot sector that keeps writing memory,
# stopped once it has, then migrated; the same boot sector migrated while it
# runs, with XBZRLE and a low bandwidth, so the stream holds several passes;
# the paused q35 guest with a dirty bitmap on a null-co node and the
# dirty-bitmaps capability (an iterable "dirty-bitmap" section: the bitmap
# must arrive with its dirty count); the paused q35 guest with the
# capabilities x-ignore-shared and validate-uuid (CONFIGURATION
# subsections, which the destination, started with the same capabilities,
# checks).
#
#   ONLY="NAME..." tests/qemu-loop.sh TOOLS_DIR   runs only these guests
#
# Exits 77 (skipped, for meson) when qemu-system-x86_64 is not installed;
# scripts/setup.sh installs it.
set -euo pipefail

tools=$(cd "${1:?usage: qemu-loop.sh TOOLS_DIR}" && pwd)
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "qemu-loop: qemu-system-x86_64 is not installed (scripts/setup.sh installs" \
        "qemu-system-x86): skipped"
    exit 77
fi
command -v python3 >/dev/null || { echo "qemu-loop: python3 is needed: skipped"; exit 77; }

work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

ram=$((32 << 20))

# The loader pattern and the boot sector of the captures (their comments
# say what the boot sector does).
python3 "$(dirname "$0")/../scripts/guest-files.py" "$work"

# A QMP client with bounded waits; runs its steps in order, then quits QEMU.
#   qmp:JSON        send a command, fail on an error answer
#   wait-mem:ADDR   poll until the 32-bit word at ADDR is not zero (30 s)
#   wait-passes:N   poll query-migrate until N dirty syncs happened (60 s)
#   wait            poll query-migrate until "completed" (120 s); works on
#                   the destination too, where it reports the incoming side
#   bitmap:NODE/NAME/COUNT  the node NODE has the dirty bitmap NAME with
#                   COUNT dirty bytes (query-named-block-nodes)
cat >"$work/qmp.py" <<'EOF'
import json, socket, sys, time

sock_path, steps = sys.argv[1], sys.argv[2:]
deadline = time.time() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("qmp: cannot connect to " + sock_path)
        time.sleep(0.05)
f = s.makefile("rw")

def cmd(obj):
    f.write(json.dumps(obj) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit("qmp: QEMU closed the connection during " + obj["execute"])
        msg = json.loads(line)
        if "error" in msg:
            sys.exit("qmp: %s: %s" % (obj["execute"], msg["error"]))
        if "return" in msg:
            return msg["return"]

def poll(what, limit, done):
    end = time.time() + limit
    while True:
        r = done()
        if r:
            return r
        if time.time() > end:
            sys.exit("qmp: timed out waiting for " + what)
        time.sleep(0.05)

def migrate_state():
    info = cmd({"execute": "query-migrate"})
    if info.get("status") in ("failed", "cancelled"):
        sys.exit("qmp: migration %s: %s" % (info["status"], info.get("error-desc", "")))
    return info

json.loads(f.readline())  # greeting
cmd({"execute": "qmp_capabilities"})
for step in steps:
    kind, _, arg = step.partition(":")
    if kind == "qmp":
        cmd(json.loads(arg))
    elif kind == "wait-mem":
        hmp = {"execute": "human-monitor-command",
               "arguments": {"command-line": "xp /1wx " + arg}}
        poll("memory at " + arg, 30, lambda: int(cmd(hmp).split(":")[1], 16) != 0)
    elif kind == "wait-passes":
        poll("%s passes over RAM" % arg, 60, lambda: migrate_state().get("status") == "completed"
             or migrate_state().get("ram", {}).get("dirty-sync-count", 0) >= int(arg))
    elif kind == "wait":
        poll("the migration", 120, lambda: migrate_state().get("status") == "completed")
    elif kind == "bitmap":
        node, name, count = arg.split("/")
        found = [b for n in cmd({"execute": "query-named-block-nodes"})
                 if n.get("node-name") == node for b in n.get("dirty-bitmaps", [])
                 if b.get("name") == name]
        if not found or found[0].get("count") != int(count):
            sys.exit("qmp: bitmap %s on %s: expected count %s, found %s" % (name, node, count, found))
    else:
        sys.exit("qmp: unknown step " + step)
cmd({"execute": "quit"})
EOF

# qemu_run SOCK STEPS... -- QEMU-ARGS...: runs QEMU under the QMP steps.
qemu_run() {
    local sock=$1 steps=()
    shift
    while [ "$1" != -- ]; do steps+=("$1"); shift; done
    shift
    rm -f "$sock"
    qemu-system-x86_64 -display none -serial none -parallel none -monitor none \
        -qmp "unix:$sock,server=on,wait=off" "$@" &
    local pid=$!
    pids+=("$pid")
    if ! python3 "$work/qmp.py" "$sock" "${steps[@]}"; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid"
}

pmemsave() { echo "qmp:{\"execute\":\"pmemsave\",\"arguments\":{\"val\":0,\"size\":$ram,\"filename\":\"$1\"}}"; }
params() { echo "qmp:{\"execute\":\"migrate-set-parameters\",\"arguments\":$1}"; }

# region_image DIR NAME: the replayed image of the region named NAME.
region_image() {
    python3 - "$1" "$2" <<'EOF'
import json, os, sys
d, name = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(d, "manifest.json")))
for r in m["regions"]:
    if r["name"] == name:
        print(os.path.join(d, r["file"]))
        break
else:
    sys.exit("no region " + name)
EOF
}

# same_outside_legacy A B: the first 32 MiB of A and B agree outside
# 0xa0000-0xfffff.
same_outside_legacy() {
    cmp -s <(head -c $((0xa0000)) "$1") <(head -c $((0xa0000)) "$2") &&
        cmp -s <(tail -c +$((0x100000 + 1)) "$1" | head -c $((ram - 0x100000))) \
            <(tail -c +$((0x100000 + 1)) "$2" | head -c $((ram - 0x100000)))
}

failed=0
# mig NAME: the source's migrate step.
mig() { echo "qmp:{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $work/$1/src.qemu\"}}"; }

# loop NAME SOURCE-STEPS... -- QEMU-ARGS...: the steps up to the migrate
# command; waiting for it and saving the RAM follow. The destination runs
# the steps in dst_before (before migrate-incoming) and dst_after (once the
# load completed), empty unless a guest sets them.
dst_before=()
dst_after=()
loop() {
    local name=$1 steps=() d="$work/$1"
    shift
    while [ "$1" != -- ]; do steps+=("$1"); shift; done
    shift
    [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || return 0
    mkdir "$d"
    local ok=1
    qemu_run "$d/src.sock" "${steps[@]}" wait "$(pmemsave "$d/src.mem")" -- "$@" || ok=0
    [ $ok = 1 ] && "$tools/migstream-import" qemu -q --stats -o "$d/src.ms" "$d/src.qemu" \
        >"$d/import.txt" || ok=0
    [ $ok = 1 ] && "$tools/migstream-validate" "$d/src.ms" >/dev/null || ok=0
    [ $ok = 1 ] && "$tools/migstream-replay" -q -o "$d/replay" "$d/src.ms" || ok=0
    [ $ok = 1 ] && "$tools/migstream-export" qemu -q --stats -o "$d/out.qemu" "$d/src.ms" \
        >"$d/export.txt" || ok=0
    [ $ok = 1 ] && qemu_run "$d/dst.sock" "${dst_before[@]}" \
        "qmp:{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"exec:cat $d/out.qemu\"}}" \
        wait "${dst_after[@]}" "$(pmemsave "$d/dst.mem")" -- "$@" -S -incoming defer || ok=0
    if [ $ok = 1 ] && ! cmp "$d/src.mem" "$d/dst.mem"; then
        echo "qemu-loop: $name: the destination's RAM differs from the source's"
        ok=0
    fi
    if [ $ok = 1 ]; then
        local img
        img=$(region_image "$d/replay" pc.ram) || ok=0
        if [ $ok = 1 ] && ! same_outside_legacy "$d/dst.mem" "$img"; then
            echo "qemu-loop: $name: the replayed pc.ram differs from QEMU's RAM"
            ok=0
        fi
    fi
    if [ $ok = 1 ]; then
        echo "ok   $name: $(grep -E '^ram passes' "$d/import.txt"), $(grep -E '^normal' "$d/export.txt")," \
            "$(stat -c %s "$d/out.qemu") bytes exported; RAM identical"
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
    return 0
}

loader=(-device "loader,file=$work/pattern.bin,addr=0x100000")
small=(-m 32 -nic none -vga none)
boot=(-drive "file=$work/boot.bin,format=raw,if=ide,snapshot=on")

loop q35-paused "$(mig q35-paused)" -- -M q35 "${small[@]}" -S "${loader[@]}"
loop pc-paused "$(mig pc-paused)" -- -M pc "${small[@]}" -S "${loader[@]}"
loop pc-ran "wait-mem:0x10000" "qmp:{\"execute\":\"stop\"}" "$(mig pc-ran)" -- -M pc "${small[@]}" "${boot[@]}"
loop pc-live-xbzrle "wait-mem:0x10000" \
    "qmp:{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"xbzrle\",\"state\":true}]}}" \
    "$(params '{"max-bandwidth":2097152,"downtime-limit":1}')" \
    "$(mig pc-live-xbzrle)" \
    wait-passes:4 "$(params '{"downtime-limit":2000,"max-bandwidth":1073741824}')" \
    -- -M pc "${small[@]}" "${boot[@]}"

caps() { # caps NAME... : enables migration capabilities
    local list="" c
    for c in "$@"; do list="$list${list:+,}{\"capability\":\"$c\",\"state\":true}"; done
    echo "qmp:{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[$list]}}"
}
hmp() { echo "qmp:{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"$1\"}}"; }
# A 64 KiB-granular bitmap with two clusters dirty (128 KiB), as in
# scripts/capture-qemu.sh; the destination has the node, not the bitmap.
dst_before=("$(caps dirty-bitmaps)")
dst_after=("bitmap:disk0/bm0/131072")
loop q35-dirty-bitmap "$(caps dirty-bitmaps)" \
    'qmp:{"execute":"block-dirty-bitmap-add","arguments":{"node":"disk0","name":"bm0","granularity":65536,"persistent":false}}' \
    "$(hmp 'qemu-io disk0 \"write 0 64k\"')" "$(hmp 'qemu-io disk0 \"write 512k 4k\"')" \
    "$(mig q35-dirty-bitmap)" -- -M q35 "${small[@]}" -S "${loader[@]}" \
    -blockdev null-co,node-name=disk0,size=1048576
# The destination refuses a stream whose capabilities differ from its own
# ("Capability x-ignore-shared is on, but received capability is off").
dst_before=("$(caps x-ignore-shared validate-uuid)")
dst_after=()
loop q35-config "$(caps x-ignore-shared validate-uuid)" "$(mig q35-config)" -- \
    -M q35 "${small[@]}" -S "${loader[@]}" -uuid 5a1e0c4d-2b7f-4f6e-9c3a-0d1e2f3a4b5c
dst_before=()

# The paused pattern must have travelled: 8 KiB at 0x100000 of the loaded RAM.
for g in q35-paused pc-paused q35-dirty-bitmap q35-config; do
    if [ -f "$work/$g/dst.mem" ] &&
        ! cmp -s <(tail -c +$((0x100000 + 1)) "$work/$g/dst.mem" | head -c 8192) "$work/pattern.bin"; then
        echo "FAIL $g: the loader pattern is not at 0x100000 of the destination"
        failed=$((failed + 1))
    fi
done
# The running guests' counter at 0x10000 must have travelled too.
for g in pc-ran pc-live-xbzrle; do
    if [ -f "$work/$g/dst.mem" ] &&
        [ "$(tail -c +$((0x10000 + 1)) "$work/$g/dst.mem" | head -c 2 | od -An -tx1 | tr -d ' \n')" = 0000 ]; then
        echo "FAIL $g: the boot sector's counter at 0x10000 is zero on the destination"
        failed=$((failed + 1))
    fi
done
[ $failed = 0 ]
