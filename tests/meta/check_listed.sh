#!/bin/sh
# Meson test: fails when a test source tests/FOLDER/test_*.c (or a pytest
# file tests/FOLDER/test_*.py) is not listed in its folder's meson.build (as
# a unit_tests or python_tests entry or a test('name', ...) call), or when a
# public header in include/migstream/ is not named in
# include/migstream/meson.build (which installs the headers and lists them
# for test_headers), so that no test or header check can be silently left
# out of the build.
#
# usage: check_listed.sh TESTS_SOURCE_DIR PUBLIC_INCLUDE_DIR
set -u

dir=${1:?tests source dir}
incdir=${2:?public include dir}
status=0

for f in "$dir"/test_*.c "$dir"/*/test_*.c "$dir"/*/test_*.py; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    name=${name%.*}
    build="$(dirname "$f")/meson.build"
    if ! grep -Eqs "^[[:space:]]*'$name'[[:space:]]*:|test\('$name'" "$build"; then
        echo "tests/${f#"$dir"/} is not listed as a test in tests/${build#"$dir"/}" >&2
        status=1
    fi
done

for h in "$incdir"/*.h; do
    [ -e "$h" ] || continue
    name=$(basename "$h")
    if ! grep -q "'$name'" "$incdir/meson.build"; then
        echo "include/migstream/$name is not listed in include/migstream/meson.build" >&2
        status=1
    fi
done

[ "$status" -eq 0 ] && echo "every test source and public header is listed"
exit "$status"
