#!/usr/bin/env bash
# Re-captures the QEMU migration streams in tests/data/qemu/ with Debian's
# qemu-system-x86 (installed when missing). No guest OS is needed:
#
#   scripts/capture-qemu.sh [OUTDIR]        (default: tests/data/qemu)
#   ONLY="NAME..." scripts/capture-qemu.sh   (only these captures)
#
# Each capture NAME gives OUTDIR/NAME.qemu.zst (the stream, zstd -19) and
# OUTDIR/NAME.query-migrate.json (QEMU's own "query-migrate" answer once the
# migration completed: tests compare its page counts with the importer's).
# A multifd capture also gives OUTDIR/NAME.chanN.qemu.zst, one per extra
# channel connection, N being the channel id of its init record: QEMU only
# uses multifd over sockets, so these migrate to a small TCP receiver that
# saves each connection it accepts to its own file.
#
# The paused captures load a known 8 KiB pattern at guest-physical 0x100000
# with -device loader: byte i of the pattern is (7 * i + 3) mod 256, which
# tests/qemu/test_import_qemu.c computes the same way. Two captures of the same
# paused guest differ only in the RTC's bytes (its clock runs on the host).
#
# The live capture boots a 512-byte boot sector (assembled below) that keeps
# writing two words into each of 64 pages, so that XBZRLE has small deltas
# to send; a low bandwidth and a 1 ms downtime limit make QEMU go over RAM
# several times (the limit is raised later, should it not converge).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../tests/data/qemu}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v qemu-system-x86_64 >/dev/null; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        qemu-system-x86 </dev/null
fi
command -v zstd >/dev/null || { echo "capture-qemu.sh: needs the zstd program" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The loader pattern and the boot sector (scripts/guest-files.py says what
# each holds).
python3 "$here/guest-files.py" "$work"

# A small QMP client: connects, runs the steps given as arguments, writes the
# final query-migrate answer, quits QEMU.
#   qmp:JSON   send a command, fail on an error answer
#   sleep:S    wait S seconds
#   wait       poll query-migrate until the migration completed (120 s at most)
cat >"$work/qmp.py" <<'EOF'
import json, socket, sys, time

sock_path, info_path, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
deadline = time.time() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("qmp: cannot connect to " + sock_path)
        time.sleep(0.1)
f = s.makefile("rw")

def reply():
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            return msg

def cmd(obj):
    f.write(json.dumps(obj) + "\n")
    f.flush()
    msg = reply()
    if "error" in msg:
        sys.exit("qmp: %s: %s" % (obj["execute"], msg["error"]))
    return msg["return"]

json.loads(f.readline())  # greeting
cmd({"execute": "qmp_capabilities"})
for step in steps:
    kind, _, arg = step.partition(":")
    if kind == "qmp":
        cmd(json.loads(arg))
    elif kind == "sleep":
        time.sleep(float(arg))
    elif kind == "wait":
        end = time.time() + 120
        while True:
            info = cmd({"execute": "query-migrate"})
            if info.get("status") == "completed":
                break
            if info.get("status") in ("failed", "cancelled") or time.time() > end:
                sys.exit("qmp: migration %s" % info.get("status", "timed out"))
            time.sleep(0.2)
        with open(info_path, "w") as o:
            json.dump(info, o, indent=1, sort_keys=True)
            o.write("\n")
    else:
        sys.exit("qmp: unknown step " + step)
cmd({"execute": "quit"})
EOF

# A TCP receiver for multifd: accepts COUNT connections on 127.0.0.1 (the
# port it got goes to PORTFILE) and saves each one, read to its end, to
# OUTDIR/PREFIX.qemu (the main channel: it starts with "QEVM") or
# OUTDIR/PREFIX.chanN.qemu (a multifd channel: it starts with the init
# record, magic 0x11223344, whose byte 24 is the channel id).
#   receiver.py PORTFILE OUTDIR PREFIX COUNT
cat >"$work/receiver.py" <<'EOF'
import os, socket, sys, threading

port_file, outdir, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(count)
srv.settimeout(120)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
saved = []

def save(conn, index):
    conn.settimeout(300)
    data = bytearray()
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    conn.close()
    if data[:4] == b"QEVM":
        name = prefix + ".qemu"
    elif data[:4] == bytes.fromhex("11223344") and len(data) >= 64:
        name = "%s.chan%d.qemu" % (prefix, data[24])
    else:
        name = "%s.unknown%d.qemu" % (prefix, index)
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)
    saved.append(name)

threads = []
for i in range(count):
    conn, _ = srv.accept()
    t = threading.Thread(target=save, args=(conn, i))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
if len(set(saved)) != count or any(".unknown" in n for n in saved):
    sys.exit("receiver: unexpected connections: %s" % saved)
EOF

only=${ONLY:-}
wanted() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
receiver_pid=

# capture NAME STEPS... -- QEMU-ARGS...
capture() {
    local name=$1 steps=() sock="$work/qmp.sock" mig="$work/$1.qemu"
    shift
    while [ "$1" != -- ]; do steps+=("$1"); shift; done
    shift
    wanted "$name" || return 0
    rm -f "$sock" "$mig"
    qemu-system-x86_64 -display none -serial none -parallel none -monitor none \
        -qmp "unix:$sock,server=on,wait=off" "$@" &
    local pid=$!
    if ! python3 "$work/qmp.py" "$sock" "$work/$name.json" "${steps[@]}"; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" || true
        echo "capture-qemu.sh: $name failed" >&2
        return 1
    fi
    wait "$pid" || true
    if [ -n "$receiver_pid" ]; then
        wait "$receiver_pid" || { echo "capture-qemu.sh: $name: receiver failed" >&2; return 1; }
    fi
    zstd -q -19 -f "$mig" -o "$out/$name.qemu.zst"
    cp "$work/$name.json" "$out/$name.query-migrate.json"
    echo "$name: $(stat -c %s "$mig") bytes, $(stat -c %s "$out/$name.qemu.zst") compressed"
}

migrate() { echo "qmp:{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $work/$1.qemu\"}}"; }
caps() { # caps NAME... : enables migration capabilities
    local list="" c
    for c in "$@"; do list="$list${list:+,}{\"capability\":\"$c\",\"state\":true}"; done
    echo "qmp:{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[$list]}}"
}
params() { echo "qmp:{\"execute\":\"migrate-set-parameters\",\"arguments\":$1}"; }

loader=(-device "loader,file=$work/pattern.bin,addr=0x100000")
# No NIC and no VGA unless wanted: their option ROMs are most of the data.
small=(-m 32 -nic none -vga none)

# Paused q35 with the pattern, twice (the two differ only in the RTC).
capture q35-paused "$(migrate q35-paused)" wait -- -M q35 "${small[@]}" -S "${loader[@]}"
capture q35-paused-again "$(migrate q35-paused-again)" wait -- -M q35 "${small[@]}" -S "${loader[@]}"
# Paused pc (i440fx) with the pattern.
capture pc-paused "$(migrate pc-paused)" wait -- -M pc "${small[@]}" -S "${loader[@]}"
# No JSON trailer.
capture q35-no-vmdesc "$(migrate q35-no-vmdesc)" wait -- \
    -M q35,suppress-vmdesc=on "${small[@]}" -S "${loader[@]}"
# Extra devices: virtio-net and e1000 on user networking (no option ROMs).
capture q35-devices "$(migrate q35-devices)" wait -- -M q35 "${small[@]}" -S "${loader[@]}" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
    -netdev user,id=n1 -device e1000,netdev=n1,romfile=
# Compressed pages (zlib; QEMU 7.x, removed in 9.1).
capture q35-compress "$(caps compress)" "$(migrate q35-compress)" wait -- \
    -M q35 "${small[@]}" -S "${loader[@]}"
# A live guest over several passes, with XBZRLE.
capture pc-xbzrle-live "$(caps xbzrle)" \
    "$(params '{"max-bandwidth":2097152,"downtime-limit":1}')" sleep:2 \
    "$(migrate pc-xbzrle-live)" sleep:4 "$(params '{"downtime-limit":2000}')" wait -- \
    -M pc "${small[@]}" -drive "file=$work/boot.bin,format=raw,if=ide,snapshot=on"
# A dirty bitmap on a null-co node (1 MiB), with 64 KiB at 0 and 4 KiB at
# 512 KiB marked dirty by qemu-io writes: the dirty-bitmaps capability sends
# it as the iterable section "dirty-bitmap" (START, PARTs, END).
capture q35-dirty-bitmap "$(caps dirty-bitmaps)" \
    'qmp:{"execute":"block-dirty-bitmap-add","arguments":{"node":"disk0","name":"bm0","granularity":65536,"persistent":false}}' \
    'qmp:{"execute":"human-monitor-command","arguments":{"command-line":"qemu-io disk0 \"write 0 64k\""}}' \
    'qmp:{"execute":"human-monitor-command","arguments":{"command-line":"qemu-io disk0 \"write 512k 4k\""}}' \
    "$(migrate q35-dirty-bitmap)" wait -- -M q35 "${small[@]}" -S "${loader[@]}" \
    -blockdev null-co,node-name=disk0,size=1048576
# Capabilities the destination checks (x-ignore-shared, validate-uuid with
# -uuid): CONFIGURATION carries the configuration/capabilities and
# configuration/uuid subsections, and MEM_SIZE each block's address.
capture q35-config "$(caps x-ignore-shared validate-uuid)" "$(migrate q35-config)" wait -- \
    -M q35 "${small[@]}" -S "${loader[@]}" -uuid 5a1e0c4d-2b7f-4f6e-9c3a-0d1e2f3a4b5c

# capture_multifd NAME CHANNELS STEPS... -- QEMU-ARGS...: the same over TCP,
# with the multifd capability and CHANNELS channels; the step MIGRATE starts
# the migration to the receiver.
capture_multifd() {
    local name=$1 nchan=$2 portfile="$work/$1.port" steps=() i
    shift 2
    wanted "$name" || return 0
    rm -f "$portfile"
    python3 "$work/receiver.py" "$portfile" "$work" "$name" $((nchan + 1)) &
    local rpid=$!
    for i in $(seq 50); do [ -f "$portfile" ] && break; sleep 0.1; done
    [ -f "$portfile" ] || { echo "capture-qemu.sh: $name: receiver did not start" >&2; return 1; }
    local port
    port=$(cat "$portfile")
    steps+=("$(caps multifd)" "$(params "{\"multifd-channels\":$nchan}")")
    while [ "$1" != -- ]; do
        if [ "$1" = MIGRATE ]; then
            steps+=("qmp:{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}")
        else
            steps+=("$1")
        fi
        shift
    done
    receiver_pid=$rpid
    if ! capture "$name" "${steps[@]}" "$@"; then
        kill "$rpid" 2>/dev/null || true
        receiver_pid=
        return 1
    fi
    receiver_pid=
    for i in $(seq 0 $((nchan - 1))); do
        zstd -q -19 -f "$work/$name.chan$i.qemu" -o "$out/$name.chan$i.qemu.zst"
        echo "$name.chan$i: $(stat -c %s "$work/$name.chan$i.qemu") bytes," \
            "$(stat -c %s "$out/$name.chan$i.qemu.zst") compressed"
    done
}

# multifd over 2 channels: the paused q35 guest with the pattern.
capture_multifd q35-multifd 2 MIGRATE wait -- -M q35 "${small[@]}" -S "${loader[@]}"
# The same with the channels' pages compressed (multifd-compression): zlib,
# then zstd.
capture_multifd q35-multifd-zlib 2 "$(params '{"multifd-compression":"zlib"}')" MIGRATE wait \
    -- -M q35 "${small[@]}" -S "${loader[@]}"
capture_multifd q35-multifd-zstd 2 "$(params '{"multifd-compression":"zstd"}')" MIGRATE wait \
    -- -M q35 "${small[@]}" -S "${loader[@]}"
# multifd over 3 channels with the running boot sector: several passes (low
# bandwidth and downtime limit as for pc-xbzrle-live).
capture_multifd pc-multifd-live 3 "$(params '{"max-bandwidth":2097152,"downtime-limit":1}')" \
    sleep:2 MIGRATE sleep:4 "$(params '{"downtime-limit":2000}')" wait -- \
    -M pc "${small[@]}" -drive "file=$work/boot.bin,format=raw,if=ide,snapshot=on"
