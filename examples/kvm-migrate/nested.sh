#!/usr/bin/env bash
# Runs kvm-migrate where this machine has no usable /dev/kvm: inside a Linux
# guest under QEMU's TCG, whose emulated CPU ("-cpu max") has AMD SVM with
# nested paging, so the guest's kernel loads kvm-amd and has a /dev/kvm of
# its own. Slow (everything is emulated), but it is real KVM: the same
# ioctls, dirty log and vCPU state as on hardware.
#
#   examples/kvm-migrate/nested.sh BUILD_DIR [KVM-MIGRATE ARGS...]
#
# BUILD_DIR holds a build of the project (examples/kvm-migrate, tools/).
# Runs "kvm-migrate migrate --out /tmp/nested.mig ARGS" in the guest, then
# migstream-dump --summary and migstream-validate --strict --schema
# schema.json (the vCPU state's schemas) on that stream, and copies
# the guest's console to BUILD_DIR/kvm-migrate-nested.log. Exits with
# kvm-migrate's status; 77 (skipped) when it cannot boot such a guest: no
# qemu-system-x86_64, no kernel image or kvm modules in /boot and
# /lib/modules, or a QEMU without SVM emulation.
set -euo pipefail

skip() {
    echo "nested.sh: SKIP: $*" >&2
    exit 77
}

[ $# -ge 1 ] || { echo "usage: nested.sh BUILD_DIR [KVM-MIGRATE ARGS...]" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 is not installed"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel" ] || skip "no kernel image in /boot (package linux-image-amd64)"
kver=${kernel#/boot/vmlinuz-}
mods=/lib/modules/$kver/kernel
for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko arch/x86/kvm/kvm.ko \
    arch/x86/kvm/kvm-amd.ko; do
    ls "$mods/$m"* >/dev/null 2>&1 || skip "no $mods/$m for kernel $kver"
done
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || skip "busybox is not installed (package busybox-static)"
# The initramfs holds no C library for it: it must be static ("not a
# dynamic executable" to ldd).
if ldd "$busybox" >/dev/null 2>&1; then
    skip "$busybox is not statically linked (package busybox-static)"
fi
for b in examples/kvm-migrate tools/migstream-dump tools/migstream-validate; do
    [ -x "$build/$b" ] || { echo "nested.sh: $build/$b is not built" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules,opt/bin}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko arch/x86/kvm/kvm.ko \
    arch/x86/kvm/kvm-amd.ko; do
    f=$(ls "$mods/$m"* | head -n 1)
    case $f in
    *.xz) xz -dc "$f" >"$root/lib/modules/$(basename "${f%.xz}")" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$(basename "${f%.zst}")" ;;
    *) cp "$f" "$root/lib/modules/" ;;
    esac
done
# The programs, every shared library they load in /opt/lib (LD_LIBRARY_PATH
# below), and the dynamic loader at its own path.
mkdir -p "$root/opt/lib"
for b in examples/kvm-migrate tools/migstream-dump tools/migstream-validate; do
    cp "$build/$b" "$root/opt/bin/"
    ldd "$build/$b" | awk '/=> \// {print $3}' | while read -r lib; do
        cp -L "$lib" "$root/opt/lib/"
    done
    loader=$(ldd "$build/$b" | awk '/^\t\/[^ ]*ld-linux/ {print $1}')
    mkdir -p "$root/$(dirname "$loader")"
    cp -L "$loader" "$root/$loader"
done

here=$(cd "$(dirname "$0")" && pwd)
cp "$here/schema.json" "$root/opt/schema.json"

args=""
for a in "$@"; do
    args="$args '${a//\'/}'"
done
cat >"$root/init" <<EOF
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in irqbypass ccp kvm kvm-amd; do
    insmod /lib/modules/\$m.ko || echo "nested: insmod \$m failed"
done
export LD_LIBRARY_PATH=/opt/lib
if [ -c /dev/kvm ]; then
    cd /tmp
    /opt/bin/kvm-migrate migrate --out /tmp/nested.mig $args
    rc=\$?
    if [ \$rc -eq 0 ]; then
        # nested.mig, or with --channels N its parts nested.mig.0 ..
        echo '\$ migstream-dump --summary nested.mig*'
        /opt/bin/migstream-dump --summary /tmp/nested.mig*
        echo '\$ migstream-validate --strict --schema schema.json nested.mig*'
        /opt/bin/migstream-validate --strict --schema /opt/schema.json /tmp/nested.mig* || rc=1
    fi
    echo "NESTED-RESULT \$rc"
else
    echo "NESTED-RESULT no-kvm"
fi
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initrd.gz")

log=$build/kvm-migrate-nested.log
timeout 1200 "$qemu" -accel tcg -cpu max -smp 2 -m 1536 -nodefaults -no-reboot \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1" -serial stdio -display none </dev/null \
    | tr -d '\r' >"$log" || true
sed -n '/^source:/,/^NESTED-RESULT/p' "$log"
result=$(sed -n 's/^NESTED-RESULT //p' "$log" | tail -n 1)
case $result in
0) exit 0 ;;
no-kvm) skip "the TCG guest's kernel did not get a /dev/kvm (QEMU without SVM emulation?); see $log" ;;
"") echo "nested.sh: the guest did not finish; see $log" >&2; exit 1 ;;
*) echo "nested.sh: kvm-migrate failed in the guest; see $log" >&2; exit 1 ;;
esac
