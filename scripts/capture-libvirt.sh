#!/usr/bin/env bash
# Re-makes the libvirt save images in tests/data/libvirt/ with Debian's
# libvirt 9.0 (libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients)
# and QEMU 7.2 (qemu-system-x86), installed when missing. Needs root: it runs
# a private libvirtd for qemu:///system.
#
#   scripts/capture-libvirt.sh [OUTDIR]        (default: tests/data/libvirt)
#   ONLY="NAME..." scripts/capture-libvirt.sh   (only these images)
#
# The libvirtd it starts sees its own /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt: they are
# bind-mounted from a temporary directory in a mount namespace of the
# script's own (unshare -m), so the machine's libvirt configuration, domains
# and daemons are neither read nor changed, and every daemon the script
# starts is stopped before it ends. Its qemu.conf runs QEMU as root without
# a security driver, namespaces or cgroups (which a container may lack),
# and sets save_image_format, which libvirt 9.0 reads only when it starts:
# the daemon is started afresh for each image.
#
# Each image NAME gives OUTDIR/NAME.libvirt.zst (the image, zstd -19). The
# domain (domain.xml below) is a 64 MiB q35 TCG guest without disks, NIC,
# video, USB or balloon, with the 8 KiB pattern of scripts/guest-files.py
# loaded at guest-physical 0x100000 (-device loader, through
# <qemu:commandline>); it is started paused, so nothing but the firmware's
# reset state is in its RAM, except for q35-running-managed, which runs
# SeaBIOS (no bootable device) for a second and is then saved with
# `virsh managedsave` instead of `virsh save`.
#
#   q35-raw, q35-gzip, q35-bzip2, q35-xz, q35-lzop
#       `virsh save` with save_image_format raw, gzip, bzip2, xz, lzop
#       (every format libvirt 9.0 writes)
#   q35-redefined
#       `virsh save` raw, then `virsh save-image-define` with the XML that
#       `virsh save-image-dumpxml` prints plus a <description> of UTF-8 text
#       and an escaped '&': libvirt rewrites the XML and the cookie after it
#       within the same data_len
#   q35-running-managed
#       `virsh managedsave` of the running guest, raw (was_running 1)
#   q35-zstd
#       built, not saved: libvirt 9.0 has no zstd format (format 5 came
#       later). q35-raw's header with format 5, then its QEMU stream
#       compressed with `zstd -c`, which is the command libvirt runs for
#       zstd (src/qemu/qemu_saveimage.c, qemuSaveImageGetCompressionProgram)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" != --inner ]; then
    out=${1:-$here/../tests/data/libvirt}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    if [ "$(id -u)" -ne 0 ]; then
        echo "capture-libvirt.sh: needs root (a private libvirtd for qemu:///system)" >&2
        exit 1
    fi
    need=()
    for p in libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 \
        gzip bzip2 xz-utils lzop zstd python3; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] ||
            need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${need[@]}" </dev/null
    fi
    work=$(mktemp -d)
    # The mount points must exist on the machine: those made here (empty)
    # are removed again at the end.
    made=()
    for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
        [ -d "$d" ] || made+=("$d")
        mkdir -p "$d" "$work/root$d"
    done
    cleanup() {
        rm -rf "$work"
        for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
    }
    trap cleanup EXIT
    # The rest runs in the mount namespace.
    unshare -m --propagation private "$0" --inner "$out" "$work"
    exit
fi

out=$2
work=$3
for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
    mount --bind "$work/root$d" "$d"
done
# libvirtd 9.0 resolves Debian's default QEMU user and group, libvirt-qemu,
# before it reads qemu.conf: the namespace gets copies of passwd and group
# with them (Debian's libvirt-daemon-system, not installed here, would add
# them to the machine's).
cp /etc/passwd "$work/passwd"
cp /etc/group "$work/group"
if ! getent passwd libvirt-qemu >/dev/null; then
    echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin' \
        >>"$work/passwd"
fi
getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$work/group"
mount --bind "$work/passwd" /etc/passwd
mount --bind "$work/group" /etc/group
# The pattern at a path that is the same on every run (the namespace's own
# /var/lib/libvirt), so that the domain XML in the images is too.
mkdir -p /var/lib/libvirt/images
python3 "$here/guest-files.py" /var/lib/libvirt/images

cat >/etc/libvirt/libvirtd.conf <<'EOF'
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF

cat >"$work/domain.xml" <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>ms-libvirt</name>
  <uuid>5a1e0c4d-2b7f-4f6e-9c3a-0d1e2f3a4b5c</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-device'/>
    <qemu:arg value='loader,file=/var/lib/libvirt/images/pattern.bin,addr=0x100000'/>
  </qemu:commandline>
</domain>
EOF

daemon_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        daemon_pid=
    fi
}
trap stop_daemon EXIT

# start_daemon FORMAT: libvirtd with save_image_format FORMAT.
start_daemon() {
    cat >/etc/libvirt/qemu.conf <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
save_image_format = "$1"
EOF
    rm -f /run/libvirt/libvirtd.pid
    libvirtd -d -p /run/libvirt/libvirtd.pid 2>>"$work/libvirtd.log"
    for _ in $(seq 100); do
        [ -s /run/libvirt/libvirtd.pid ] && virsh -q -c qemu:///system version >/dev/null 2>&1 &&
            break
        sleep 0.1
    done
    if ! [ -s /run/libvirt/libvirtd.pid ]; then
        echo "capture-libvirt.sh: libvirtd did not start:" >&2
        cat "$work/libvirtd.log" >&2
        exit 1
    fi
    daemon_pid=$(cat /run/libvirt/libvirtd.pid)
}

virsh() { command virsh -q -c qemu:///system "$@"; }

only=${ONLY:-}
wanted() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

keep() { # keep NAME FILE
    zstd -q -19 -f "$2" -o "$out/$1.libvirt.zst"
    chmod 644 "$out/$1.libvirt.zst"
    echo "$1: $(stat -c %s "$2") bytes, $(stat -c %s "$out/$1.libvirt.zst") compressed"
}

# save NAME FORMAT: the paused guest, saved with `virsh save`.
save() {
    wanted "$1" || return 0
    start_daemon "$2"
    virsh create "$work/domain.xml" --paused >/dev/null
    virsh save ms-libvirt "$work/$1.img" >/dev/null
    stop_daemon
    keep "$1" "$work/$1.img"
}

save q35-raw raw
for f in gzip bzip2 xz lzop; do
    save "q35-$f" "$f"
done

# An image whose XML libvirt rewrote in place (the padding is there for it).
if wanted q35-redefined; then
    start_daemon raw
    virsh create "$work/domain.xml" --paused >/dev/null
    virsh save ms-libvirt "$work/q35-redefined.img" >/dev/null
    virsh save-image-dumpxml "$work/q35-redefined.img" |
        sed "s|</name>|</name>\\n  <description>Sauvegardé à chaud \&amp; relu ✓</description>|" \
            >"$work/redefined.xml"
    grep -q '<description>' "$work/redefined.xml"
    virsh save-image-define "$work/q35-redefined.img" "$work/redefined.xml" >/dev/null
    stop_daemon
    keep q35-redefined "$work/q35-redefined.img"
fi

# The running guest, by managed save: libvirt keeps the image in
# /var/lib/libvirt/qemu/save/ for the next start of a defined domain.
if wanted q35-running-managed; then
    start_daemon raw
    virsh define "$work/domain.xml" >/dev/null
    virsh start ms-libvirt >/dev/null
    sleep 1
    virsh managedsave ms-libvirt >/dev/null
    stop_daemon
    keep q35-running-managed /var/lib/libvirt/qemu/save/ms-libvirt.save
fi

# zstd, as a newer libvirt writes it (see above): the header (92 bytes and
# data_len more) with format 5, then the QEMU stream through zstd -c.
if wanted q35-zstd; then
    [ -f "$work/q35-raw.img" ] || { echo "capture-libvirt.sh: q35-zstd needs q35-raw" >&2; exit 1; }
    python3 - "$work/q35-raw.img" "$work/q35-zstd.img" <<'EOF'
import struct, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
img = open(src, "rb").read()
assert img[:16] == b"LibvirtQemudSave"
version, data_len, was_running, fmt = struct.unpack_from("<4I", img, 16)
assert version == 2 and fmt == 0
head = bytearray(img[:92 + data_len])
struct.pack_into("<I", head, 28, 5)
z = subprocess.run(["zstd", "-q", "-c"], input=img[92 + data_len:], stdout=subprocess.PIPE,
                   check=True).stdout
open(dst, "wb").write(bytes(head) + z)
EOF
    keep q35-zstd "$work/q35-zstd.img"
fi

{
    echo "libvirt: $(libvirtd --version)"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    for p in libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 gzip bzip2 xz-utils \
        lzop zstd; do
        echo "$p $(dpkg-query -W -f='${Version}' "$p")"
    done
} >"$out/VERSIONS"
