#!/usr/bin/env bash
# Installs what is missing, builds libmigstream in build/ and runs the demo.
#
# Where /dev/kvm is usable: a live migration of a running KVM guest between
# two processes through libmigstream (examples/kvm-migrate), its stream
# kept in demo-out/kvm.mig and shown with migstream-dump --summary and
# migstream-validate. Then, everywhere: a synthetic guest written as a
# stream to demo-out/demo.mig, read back and checked; then the tools on it:
# migstream-dump --summary, migstream-validate, migstream-replay, and
# migstream-diff against the same guest written with other batching
# (equal) and against the guest with 3 pages changed (exactly those).
# Extra arguments go to the first migstream-demo run (try --help,
# --compress 3). Last, it says where `meson install -C build` would install:
# a prefix set on build/ (meson configure build --prefix=DIR) is kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# Meson's own chatter goes to a log, shown only if a step fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
quiet() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "demo.sh: failed: $*" >&2
        exit 1
    fi
}

echo "demo.sh: building migstream-demo in build/"
if [ ! -f build/meson-private/coredata.dat ]; then
    quiet meson setup build
elif ! meson setup --reconfigure build >"$log" 2>&1; then
    # For instance a build dir made by another meson version: start it afresh.
    quiet meson setup --wipe build
fi
quiet meson compile -C build migstream-demo migstream-dump migstream-validate \
    migstream-replay migstream-diff
t=build/tools
step() { printf '\n$ %s\n' "$*"; }
mkdir -p demo-out

if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
    meson compile -C build kvm-migrate >"$log" 2>&1; then
    step kvm-migrate migrate --out demo-out/kvm.mig
    build/examples/kvm-migrate migrate --force --out demo-out/kvm.mig
    step migstream-dump --summary demo-out/kvm.mig
    $t/migstream-dump --summary demo-out/kvm.mig
    step migstream-validate demo-out/kvm.mig
    $t/migstream-validate demo-out/kvm.mig
    echo
    echo "demo.sh: and the same tools on a synthetic guest:"
else
    echo "demo.sh: /dev/kvm is not usable here, so no live KVM migration (examples/kvm-migrate);"
    echo "         tests/kvm-migrate.sh runs it in a TCG guest with nested KVM instead."
    echo "         The synthetic guest:"
fi

# The demo refuses to replace a file unless told to; this one is ours to replace.
build/tools/migstream-demo --force -o demo-out/demo.mig "$@"
step migstream-dump --summary demo-out/demo.mig
$t/migstream-dump --summary demo-out/demo.mig

step migstream-validate demo-out/demo.mig
$t/migstream-validate demo-out/demo.mig

step migstream-replay --force -o demo-out/replay demo-out/demo.mig
$t/migstream-replay --force --quiet -o demo-out/replay demo-out/demo.mig
ls -ls demo-out/replay | sed 's/^/  /'
echo "  (the first column is the blocks really allocated: zero pages are holes)"

step "migstream-demo --batch-kib 64 (same guest, other batching); migstream-diff"
$t/migstream-demo --force -o demo-out/rebatched.mig --batch-kib 64 "$@" >/dev/null
ls -l demo-out/demo.mig demo-out/rebatched.mig | awk '{print "  " $5, $9}'
cmp -s demo-out/demo.mig demo-out/rebatched.mig || echo "  the two files differ in bytes; migstream-diff compares their effect:"
$t/migstream-diff demo-out/demo.mig demo-out/rebatched.mig

step "migstream-demo --change 3 (3 pages changed); migstream-diff"
$t/migstream-demo --force -o demo-out/changed.mig --change 3 "$@" | grep '^changed'
status=0
$t/migstream-diff demo-out/demo.mig demo-out/changed.mig || status=$?
echo "  (migstream-diff exit status $status: 1 means the streams differ)"

prefix=$(meson introspect build --buildoptions | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
echo
echo "demo.sh: \`meson install -C build\` installs into $prefix; to change that:"
echo "         meson configure build --prefix=DIR (README.md, \"Install\")"
