#!/usr/bin/env bash
# Runs a subset of the unit tests and the command-line tools under valgrind's
# memcheck, for what AddressSanitizer cannot show: code built without
# instrumentation (a plain, non-sanitized build, as packagers make it),
# uninitialised reads, and system libraries (zstd, libcbor) called with our
# buffers. Builds (or reuses) build-valgrind/ (buildtype=debug, no sanitizer,
# no fuzzing), writes sample streams with tests/cli/gen-streams, and runs
# each program under
#   valgrind --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect
# Prints one line per program ("PASS name" or "FAIL name: why") and, last,
# "N passed, N failed"; the same lines go to build-valgrind/valgrind.txt for
# scripts/test-summary.py. Exits non-zero when a program failed. Called by
# scripts/test.sh; VALGRIND_LOGS=1 keeps each program's valgrind log in
# build-valgrind/valgrind-logs/ (kept anyway for failures).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=build-valgrind
out=$dir/valgrind.txt
logs=$PWD/$dir/valgrind-logs

if ! command -v valgrind >/dev/null; then
    echo "valgrind.sh: valgrind is not installed (scripts/setup.sh installs it)" >&2
    exit 2
fi

# Unit tests fast enough under memcheck's ~20x slowdown; test_corruption
# (139,000 variants) and test_alloc (every allocation failing in turn) are
# left to the ASan build, as is test_zero (minutes of page scans); test_cbor
# counts allocations by replacing malloc, which valgrind replaces too.
# test_libvirt_hostile runs the codecs (zlib, libbz2, liblzma, libzstd) on
# damaged libvirt save images.
tests=(test_vectors test_refusals test_device test_replay test_cbor_format test_hostile
    test_roundtrip test_libvirt_hostile)
tools=(migstream-dump migstream-validate migstream-diff migstream-replay migstream-pack)

opts=(-Dbuildtype=debug -Db_sanitize=none -Dfuzz=false -Dtests=true -Dtools=true)
# Reused with "meson configure", which also fails when meson cannot load the
# directory (made by another meson version, say): it is then made afresh.
if [ ! -f "$dir/meson-private/coredata.dat" ]; then
    meson setup "$dir" "${opts[@]}" >/dev/null || exit 2
elif ! meson configure "$dir" "${opts[@]}" >/dev/null 2>&1; then
    meson setup --wipe "$dir" "${opts[@]}" >/dev/null || exit 2
fi
# Only what runs here; a test another change has removed is skipped below.
targets=(gen-streams)
for t in "${tests[@]}" "${tools[@]}"; do
    targets+=("$t")
done
if ! meson compile -C "$dir" "${targets[@]}" >"$dir/valgrind-build.log" 2>&1; then
    tail -20 "$dir/valgrind-build.log" >&2
    echo "valgrind.sh: build failed (log: $dir/valgrind-build.log)" >&2
    exit 2
fi

rm -rf "$logs"
mkdir -p "$logs"
: >"$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0

say() {
    echo "$*"
    echo "$*" >>"$out"
}

# run NAME EXPECTED_EXIT PROGRAM ARGS...: one program under memcheck.
run() {
    local name=$1 want=$2 log=$logs/$1.log
    shift 2
    local t0=$SECONDS status
    (cd "$work" && CMOCKA_MESSAGE_OUTPUT=STDOUT valgrind -q --error-exitcode=99 \
        --leak-check=full --errors-for-leak-kinds=definite,indirect --log-file="$log" \
        "$@" >"$log.out" 2>&1 </dev/null)
    status=$?
    local secs=$((SECONDS - t0))
    if [ "$status" = 99 ] || [ -s "$log" ]; then
        fail=$((fail + 1))
        say "FAIL $name: memcheck reported errors (${secs}s; $log)"
        grep -m 5 -E "^==[0-9]+== [A-Z]" "$log" | sed 's/^/    /'
    elif [ "$status" != "$want" ]; then
        fail=$((fail + 1))
        say "FAIL $name: exit $status, expected $want (${secs}s; $log.out)"
        tail -5 "$log.out" | sed 's/^/    /'
    else
        pass=$((pass + 1))
        say "PASS $name (${secs}s)"
        [ "${VALGRIND_LOGS:-0}" = 1 ] || rm -f "$log" "$log.out"
    fi
}

for t in "${tests[@]}"; do
    if [ -x "$dir/tests/$t" ]; then
        run "$t" 0 "$PWD/$dir/tests/$t"
    else
        say "FAIL $t: not built"
        fail=$((fail + 1))
    fi
done

# The tools on sample streams (tests/cli/gen-streams; their expected exit
# codes are those of tests/cli).
T=$PWD/$dir/tools S=$work/samples
if "$PWD/$dir/tests/gen-streams" "$S" >/dev/null 2>&1; then
    run dump-summary 0 "$T/migstream-dump" --summary "$S/basic.mig"
    run dump-json 0 "$T/migstream-dump" --json "$S/small.mig"
    run validate 0 "$T/migstream-validate" "$S/basic.mig"
    run validate-corrupt 1 "$T/migstream-validate" "$S/corrupt.mig"
    run diff-same 0 "$T/migstream-diff" "$S/basic.mig" "$S/rebatched.mig"
    run diff-changed 1 "$T/migstream-diff" --json "$S/basic.mig" "$S/changed.mig"
    run replay 0 "$T/migstream-replay" -q -o "$work/out" "$S/basic.mig"
    run replay-truncated 1 "$T/migstream-replay" -q -o "$work/out2" "$S/truncated.mig"
    run pack 0 "$T/migstream-pack" -o "$work/packed.mig" "$work/out"
else
    say "FAIL gen-streams: cannot write the sample streams"
    fail=$((fail + 1))
fi

say "$pass passed, $fail failed"
[ "$fail" = 0 ]
