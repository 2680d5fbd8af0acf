#!/bin/sh
# The public libraries export the ms_ API and nothing else: every defined
# global symbol of libmigstream.a and every dynamic symbol of
# libmigstream.so starts with ms_ (scripts/localize-archive.sh, MS_API).
#   test_symbols.sh LIBMIGSTREAM.a LIBMIGSTREAM.so
set -u
status=0
nm=${NM:-nm}
a=$("$nm" -g --defined-only "$1" | awk 'NF == 3 { print $3 }')
so=$("$nm" -D --defined-only "$2" | awk 'NF == 3 { print $3 }')
for lib in a so; do
    eval "names=\$$lib"
    if [ -z "$names" ]; then
        echo "libmigstream.$lib defines no global symbol at all" >&2
        status=1
        continue
    fi
    other=$(printf '%s\n' "$names" | grep -v '^ms_')
    if [ -n "$other" ]; then
        echo "libmigstream.$lib exports names outside the ms_ API:" >&2
        printf '  %s\n' $other >&2
        status=1
    fi
    echo "libmigstream.$lib: $(printf '%s\n' "$names" | wc -l) symbols, all ms_"
done
exit "$status"
