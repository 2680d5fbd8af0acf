#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time (FUZZ_SECONDS, default 60)
# on a scratch copy of its seed corpus, in build-fuzz/ (clang, ASan+UBSan).
# An input that takes more than FUZZ_TIMEOUT seconds (default 10) or makes
# the process pass FUZZ_RSS_MB of RSS (default 2048) is a failure too: the
# cost model of docs/SECURITY.md, "Cost", is held like memory safety.
# Writes one line per target to build-fuzz/fuzz-smoke.txt ("PASS name runs"
# or "FAIL name reason") for the test summary, and exits non-zero if a target
# crashed, leaked or found undefined behaviour; the crashing input is kept in
# build-fuzz/ for a regression test. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
dir=${FUZZ_BUILD_DIR:-build-fuzz} # another directory: set up the same way

if [ ! -f "$dir/meson-private/coredata.dat" ]; then
    CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Dtools=false \
        -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized >/dev/null
fi
meson compile -C "$dir" >/dev/null

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
out=$dir/fuzz-smoke.txt
: >"$out"
status=0
# Every libFuzzer target fuzz/meson.build built (fuzz_targets there), so a
# new target is run without being listed here too.
targets=()
for f in "$dir"/fuzz/fuzz_*; do
    case $f in *-replay | *.p | *.a) continue ;; esac
    [ -f "$f" ] && [ -x "$f" ] && targets+=("$(basename "$f")")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "FAIL fuzz-targets none built in $dir/fuzz" >>"$out"
    echo "fuzz: no target was built in $dir/fuzz" >&2
    exit 1
fi
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    if [ -d fuzz/corpus/$t ]; then
        cp -r fuzz/corpus/$t/. "$work/"
    fi
    log=$dir/$t-smoke.log
    # The QEMU and Xen importers read their own formats: their own
    # dictionaries, and inputs long enough to hold pages and device state.
    dict=fuzz/migstream.dict max_len=16384
    if [ "$t" = fuzz_import_qemu ]; then
        dict=fuzz/qemu.dict max_len=65536
    elif [ "$t" = fuzz_xen ]; then
        dict=fuzz/xen.dict max_len=65536
    fi
    if "$dir/fuzz/$t" -max_total_time="$seconds" -dict="$dict" -max_len="$max_len" \
        -timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
        -artifact_prefix="$dir/$t-crash-" -print_final_stats=1 "$work" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "PASS $t $runs" >>"$out"
        echo "fuzz: $t: $runs runs in ${seconds}s, no failure"
    else
        echo "FAIL $t see $log" >>"$out"
        echo "fuzz: $t FAILED; input kept as $dir/$t-crash-*; log:" >&2
        grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5 >&2
        status=1
    fi
    rm -rf "$work"
done
exit $status
