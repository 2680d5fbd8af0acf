#!/bin/sh
# Saves the memory of a real Linux guest for bench/run.sh: boots Debian's
# kernel with a busybox initramfs under Debian's QEMU (KVM when /dev/kvm
# works, else TCG), 512 MiB of RAM, runs a workload that fills part of
# memory (text files, copies of a binary, random data on tmpfs), pauses the
# guest, then through QMP:
#   pmemsave 0 512 MiB  -> OUTDIR/guest.img  (the image run.sh measures)
#   migrate exec:cat    -> OUTDIR/qemu.mig   (QEMU's own stream, for size)
#
# usage: bench/real-guest.sh [OUTDIR]     (default: build-bench/guest)
#        REAL_GUEST_ACCEL=tcg bench/real-guest.sh ...   (no KVM, see below)
#        REAL_GUEST_RANDOM_MIB=N bench/real-guest.sh ... (random data the
#        workload writes, default 64 MiB: how much of the guest no
#        compressor shrinks, which bounds every size ratio; PERFORMANCE.md)
# Installs its packages with apt-get when missing (bench-only dependencies,
# not part of scripts/setup.sh).
set -eu

BENCH_PACKAGES="qemu-system-x86 linux-image-amd64 busybox-static cpio python3"
MEM_MIB=512
RANDOM_MIB=${REAL_GUEST_RANDOM_MIB:-64}
case $RANDOM_MIB in
'' | *[!0-9]*) echo "real-guest.sh: REAL_GUEST_RANDOM_MIB must be a number of MiB" >&2; exit 2 ;;
esac
BOOT_TIMEOUT=900 # seconds; TCG on a busy 2-core machine is slow

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$(dirname "$here")/build-bench/guest"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

missing=
for p in $BENCH_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "real-guest.sh: installing$missing" >&2
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
fi

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "real-guest.sh: no /boot/vmlinuz-*" >&2; exit 2; }
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "real-guest.sh: no $busybox (busybox-static)" >&2; exit 2; }

# --------------------------------------------------------------- initramfs
root="$out/initramfs"
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cat >"$root/init" <<'EOF'
#!/bin/sh
# Fills memory like a small server that has been up for a while: logs and
# other text in tmpfs, several copies of a program, some random data
# (compressed or encrypted files); the rest of RAM stays free (zero).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=320m tmpfs /tmp
echo "workload: starting"
i=0
while [ $i -lt 6 ]; do
    sed "s/^/$i /" /proc/kallsyms >/tmp/symbols.$i
    dmesg >>/tmp/log
    ls -lR /sys/devices >>/tmp/log 2>/dev/null
    cp /bin/busybox /tmp/prog.$i
    i=$((i + 1))
done
dd if=/dev/urandom of=/tmp/random bs=1M count=@RANDOM_MIB@ 2>/dev/null
sync
free
echo "WORKLOAD DONE"
while :; do sleep 3600; done
EOF
sed -i "s/@RANDOM_MIB@/$RANDOM_MIB/" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$out/initramfs.cpio.gz")

# -------------------------------------------------------------------- boot
# REAL_GUEST_ACCEL=tcg or kvm chooses; by default KVM when /dev/kvm is
# writable. On a VM whose /dev/kvm opens but does not run guests (under
# PVM, the guest printed nothing in 15 minutes) set REAL_GUEST_ACCEL=tcg.
accel=${REAL_GUEST_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
        accel=kvm
    fi
fi
case $accel in
kvm) cpu=host ;;
tcg) cpu=max ;;
*) echo "real-guest.sh: REAL_GUEST_ACCEL must be tcg or kvm" >&2; exit 2 ;;
esac
qmp="$out/qmp.sock"
console="$out/console.log"
rm -f "$qmp" "$console" "$out/guest.img.tmp" "$out/qemu.mig.tmp"
echo "real-guest.sh: booting $kernel with accel=$accel, ${MEM_MIB} MiB, ${RANDOM_MIB} MiB random" >&2
qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "$MEM_MIB" -smp 1 \
    -nodefaults -display none -no-reboot \
    -kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet" \
    -serial "file:$console" \
    -qmp "unix:$qmp,server=on,wait=off" &
qemu_pid=$!
trap 'kill $qemu_pid 2>/dev/null || true' EXIT INT TERM

waited=0
until grep -q "WORKLOAD DONE" "$console" 2>/dev/null; do
    if ! kill -0 $qemu_pid 2>/dev/null; then
        echo "real-guest.sh: QEMU exited early; console:" >&2
        cat "$console" >&2
        exit 1
    fi
    if [ $waited -ge $BOOT_TIMEOUT ]; then
        echo "real-guest.sh: no WORKLOAD DONE after ${BOOT_TIMEOUT}s; console:" >&2
        tail -n 20 "$console" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done
echo "real-guest.sh: workload done after ~${waited}s; saving memory" >&2

# --------------------------------------------------------------------- QMP
python3 - "$qmp" "$out" "$MEM_MIB" <<'EOF'
import json, os, socket, sys, time

path, out, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rw")

def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg:
            return msg["return"]
        if "error" in msg:
            sys.exit("QMP %s failed: %s" % (name, msg["error"]))
        # events (STOP, MIGRATION...) are skipped

json.loads(f.readline())  # greeting
cmd("qmp_capabilities")
cmd("stop")
cmd("pmemsave", val=0, size=mib << 20, filename=out + "/guest.img.tmp")
cmd("migrate", uri="exec:cat > '%s/qemu.mig.tmp'" % out)
deadline = time.time() + 600
while True:
    st = cmd("query-migrate").get("status")
    if st == "completed":
        break
    if st in ("failed", "cancelled") or time.time() > deadline:
        sys.exit("migration %s" % st)
    time.sleep(0.2)
cmd("quit")
EOF
wait $qemu_pid 2>/dev/null || true
trap - EXIT INT TERM
mv "$out/guest.img.tmp" "$out/guest.img"
mv "$out/qemu.mig.tmp" "$out/qemu.mig"
printf 'accel=%s\nkernel=%s\nqemu=%s\nmem_mib=%s\nrandom_mib=%s\n' "$accel" "$kernel" \
    "$(qemu-system-x86_64 --version | head -n 1)" "$MEM_MIB" "$RANDOM_MIB" >"$out/guest.txt"
echo "real-guest.sh: $out/guest.img ($(stat -c %s "$out/guest.img") bytes)," \
    "$out/qemu.mig ($(stat -c %s "$out/qemu.mig") bytes)" >&2
