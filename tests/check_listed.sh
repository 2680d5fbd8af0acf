#!/bin/sh
# Meson test: fails when a tests/test_*.c file is not registered as a test in
# tests/meson.build (as a unit_tests entry or a test('name', ...) call), or
# when a public header in include/migstream/ is missing from public_headers,
# so that no test or header check can be silently left out of the build.
#
# usage: check_listed.sh TESTS_SOURCE_DIR PUBLIC_INCLUDE_DIR
set -u

dir=${1:?tests source dir}
incdir=${2:?public include dir}
build="$dir/meson.build"
status=0

for f in "$dir"/test_*.c; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .c)
    if ! grep -Eq "^[[:space:]]*'$name'[[:space:]]*:|test\('$name'" "$build"; then
        echo "tests/$name.c is not listed as a test in tests/meson.build" >&2
        status=1
    fi
done

for h in "$incdir"/*.h; do
    [ -e "$h" ] || continue
    name=$(basename "$h")
    if ! sed -n '/^public_headers[[:space:]]*=/,/\]/p' "$build" | grep -q "'$name'"; then
        echo "include/migstream/$name is not in public_headers in tests/meson.build" >&2
        status=1
    fi
done

[ "$status" -eq 0 ] && echo "every tests/test_*.c and public header is listed"
exit "$status"
