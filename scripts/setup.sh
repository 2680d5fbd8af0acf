#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing libmigstream need,
# and only those that are missing. Says nothing when nothing is missing.
# Runs without a terminal (CI sets CI=true and gives no standard input): apt
# never prompts, and sudo (used when not root) never asks for a password then.
#   scripts/setup.sh [--tests]   (--tests: what the test suite needs besides)
set -euo pipefail

required=(
    meson ninja-build pkg-config
    gcc libc6-dev # gcc only recommends libc6-dev, and recommends are not installed
    clang libclang-rt-14-dev # libFuzzer and the sanitizer runtimes for fuzz/
    libzstd-dev libcbor-dev libxxhash-dev
    libcmocka-dev
    libjansson-dev # migstream-pack reads device state given as JSON; the QEMU importer its trailer
    zlib1g-dev # the QEMU importer inflates QEMU 7.x's compressed pages; gzip'd libvirt save images
    liblzma-dev libbz2-dev # xz and bzip2 libvirt save images (-Dlibvirt, the default)
    zstd # the CLI tests of migstream-import decompress the QEMU captures
    python3 # scripts/test-summary.py and the CLI tests' helpers
    python3-dev # the Python package migstream (python/), built when its headers are there
    time # GNU time: the CLI tests measure peak memory with /usr/bin/time
    valgrind # scripts/valgrind.sh: memcheck on a plain build, where ASan cannot look
)
optional=(zstd) # the zstd CLI, handy for poking at compressed payloads

# "setup.sh --tests" (scripts/test.sh) also installs what the tests that
# drive real virtual machines need; each of them skips (77) without it.
if [ "${1:-}" = "--tests" ]; then
    # tests/qemu-loop.sh loads exported streams into a real QEMU;
    # tests/kvm-migrate.sh boots a TCG guest with it where /dev/kvm is not
    # usable here (examples/kvm-migrate/nested.sh), from Debian's kernel
    # and a static busybox.
    required+=(qemu-system-x86)
    # tests/python/: the Python package's suite (pytest; numpy for the
    # buffer-protocol tests, which skip without it).
    required+=(python3-pytest python3-numpy)
    # tests/cli/check-json.py checks every JSON output of the CLI tests
    # against docs/schemas/ (skipped, with a note, without it).
    required+=(python3-jsonschema)
    # tests/xen checks every export with Xen's own stream checker,
    # verify-stream-v2, and its Python module xen.migration, which run
    # without a hypervisor; those tests skip without them.
    required+=(xen-utils-4.17)
    if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
        required+=(linux-image-amd64 busybox-static cpio)
    fi
fi

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "setup.sh: not a Debian system; make sure these (or your system's" \
        "equivalents) are installed: ${required[*]}" >&2
    exit 0
fi

missing=()
for p in "${required[@]}"; do
    installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Installing anyway: take the nice-to-haves along.
for p in "${optional[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    # With no terminal there is nobody to type a password: fail instead of hanging.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
else
    echo "setup.sh: missing packages: ${missing[*]}" >&2
    echo "setup.sh: not root and no sudo; install them as root, then run this again" >&2
    exit 1
fi

echo "setup.sh: installing ${missing[*]}"
apt() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 "$@" \
        </dev/null
}
apt update
apt install -y --no-install-recommends "${missing[@]}"

for p in "${required[@]}"; do
    if ! installed "$p"; then
        echo "setup.sh: $p is still not installed" >&2
        exit 1
    fi
done
