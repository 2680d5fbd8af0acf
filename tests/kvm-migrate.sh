#!/usr/bin/env bash
# End-to-end test of examples/kvm-migrate: a running KVM guest migrates live
# from a source process to a destination process through libmigstream, over
# 1, 2 and 4 channels (--channels: one connection, one sender thread and one
# receiver thread per channel, each carrying one part of the migration).
#
#   tests/kvm-migrate.sh BUILD_ROOT SOURCE_ROOT
#
# kvm-migrate itself checks that guest memory at resume equals the source's
# at pause (a digest of every page), that the vCPU state KVM holds on the
# destination equals the source's, and that the guest's counter moves on
# after resuming; it exits 1 otherwise. This script also asks, for each
# number of channels, for more than one round after the full pass, with
# non-zero dirty counts, and for the captured stream (one file, or the part
# files of the migration) to pass migstream-validate --strict against the
# schemas of the vCPU state (examples/kvm-migrate/schema.json).
#
# With a usable /dev/kvm it runs here. Without one it runs inside a TCG
# guest whose emulated CPU has SVM (examples/kvm-migrate/nested.sh), so the
# test still drives real KVM; where that cannot boot (no QEMU, kernel image
# or modules) it is skipped (exit 77) with the reason.
set -euo pipefail

build=$1
src=$2
km=$build/examples/kvm-migrate
tools=$build/tools
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# A small guest and a modest rate keep the nested run short.
args=(--mem 64 --working-set 1024 --rate 3000 --threshold 32)
kvm_here=0
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && kvm_here=1

# One migration over $1 channels; its output in $out/log-$1.
migrate() {
    local n=$1 log=$out/log-$1 where rc
    if [ $kvm_here = 1 ]; then
        where="here"
        if ! "$km" migrate "${args[@]}" --channels "$n" --out "$out/live-$n.mig" >"$log" 2>&1; then
            cat "$log"
            echo "kvm-migrate.sh: kvm-migrate failed with $n channels" >&2
            exit 1
        fi
        local files=("$out/live-$n.mig")
        [ "$n" -gt 1 ] && files=("$out/live-$n.mig".*)
        "$tools/migstream-validate" --strict --schema "$src/examples/kvm-migrate/schema.json" \
            "${files[@]}" >>"$log" 2>&1 || {
            cat "$log"
            echo "kvm-migrate.sh: the captured stream is not valid ($n channels)" >&2
            exit 1
        }
    else
        where="in a TCG guest with nested KVM (no usable /dev/kvm here)"
        set +e
        bash "$src/examples/kvm-migrate/nested.sh" "$build" "${args[@]}" --channels "$n" \
            >"$log" 2>&1
        rc=$?
        set -e
        if [ $rc -eq 77 ]; then
            echo "kvm-migrate.sh: SKIP: no usable /dev/kvm, and no nested KVM either:"
            cat "$log"
            exit 77
        fi
        if [ $rc -ne 0 ]; then
            cat "$log"
            echo "kvm-migrate.sh: kvm-migrate failed $where with $n channels" >&2
            exit 1
        fi
    fi
    cat "$log"

    # "round N: D dirty pages" lines after round 0, live and final.
    local rounds dirty
    rounds=$(grep -cE '^round [1-9][0-9]*( \(final, vCPU paused\))?: [0-9]+ dirty pages' "$log" || true)
    dirty=$(sed -nE 's/^round [1-9][0-9]*( \(final, vCPU paused\))?: ([0-9]+) dirty pages.*/\2/p' \
        "$log" | awk '{s += $1} END {print s + 0}')
    grep -q '^migration: OK' "$log" ||
        { echo "kvm-migrate.sh: no 'migration: OK' ($n channels)" >&2; exit 1; }
    grep -q 'result: valid' "$log" ||
        { echo "kvm-migrate.sh: stream not validated ($n channels)" >&2; exit 1; }
    if [ "$n" -gt 1 ]; then
        grep -q "^migration: parts $n," "$log" ||
            { echo "kvm-migrate.sh: the stream is not in $n parts" >&2; exit 1; }
    fi
    if [ "$rounds" -lt 2 ] || [ "$dirty" -eq 0 ]; then
        echo "kvm-migrate.sh: expected more than one round after round 0 with dirty pages;" \
            "got $rounds rounds, $dirty dirty pages ($n channels)" >&2
        exit 1
    fi
    echo "kvm-migrate.sh: OK $where, $n channel(s): $rounds rounds after the full pass," \
        "$dirty dirty pages in all"
}

for n in 1 2 4; do
    migrate "$n"
done
