#!/usr/bin/env bash
# Installs what is missing, builds libmigstream in build-asan/ with
# AddressSanitizer and UndefinedBehaviorSanitizer, runs the whole test suite
# then every fuzz target for FUZZ_SECONDS (default 60) each and a subset under
# valgrind (scripts/valgrind.sh), and ends with one line, "N passed, N failed,
# N skipped", counting cmocka test cases (a test that is not cmocka counts as
# one case; each fuzz target and each valgrind program as one).
# Exits non-zero when a test failed, a sanitizer reported, or no test ran.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --tests

dir=build-asan
want="address,undefined debug"

options() { # prints "<b_sanitize> <buildtype>" of $dir, or nothing
    meson introspect "$dir" --buildoptions 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["b_sanitize"], o["buildtype"])' 2>/dev/null || true
}

# Reuse build-asan/, setting the options with "meson configure", which
# also fails when meson cannot load the build dir (made by another meson
# version, say). Not with "meson setup --reconfigure -D...": meson 1.0
# ignores base options such as b_sanitize given that way
# (mesonbuild/meson#11732). A build dir that fails or still disagrees is
# wiped; it only ever holds build output.
if [ ! -f "$dir/meson-private/coredata.dat" ]; then
    meson setup "$dir" -Db_sanitize=address,undefined --buildtype=debug
elif ! meson configure "$dir" -Db_sanitize=address,undefined -Dbuildtype=debug >/dev/null 2>&1 ||
    [ "$(options)" != "$want" ]; then
    echo "test.sh: $dir cannot be reused as it is; configuring it afresh"
    meson setup --wipe "$dir" -Db_sanitize=address,undefined --buildtype=debug
fi
meson compile -C "$dir"

# Any sanitizer report ends the process with abort(), so the test fails.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
# The summary reads cmocka's default output, whatever the caller's setting.
export CMOCKA_MESSAGE_OUTPUT=STDOUT

testlog="$dir/meson-logs/testlog.json"
rm -f "$testlog" # an earlier run's log must not be counted if this one writes none
status=0
meson test -C "$dir" --print-errorlogs --num-processes 2 || status=$?

# Each fuzz target for a bounded time (scripts/fuzz-smoke.sh, FUZZ_SECONDS).
fuzz=0
rm -f build-fuzz/fuzz-smoke.txt
bash scripts/fuzz-smoke.sh || fuzz=$?

# A subset of the tests and the tools under valgrind's memcheck, in a plain
# build (scripts/valgrind.sh): what AddressSanitizer cannot see.
valgrind=0
rm -f build-valgrind/valgrind.txt
bash scripts/valgrind.sh || valgrind=$?

summary=0
python3 scripts/test-summary.py "$testlog" build-fuzz/fuzz-smoke.txt \
    build-valgrind/valgrind.txt || summary=$?
if [ "$fuzz" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$fuzz
fi
if [ "$valgrind" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$valgrind
fi
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
exit "$summary"
