#!/bin/sh
# Builds libmigstream.a from the layers' static archives: links their
# objects into one relocatable object, makes every hidden symbol local
# (everything but what MS_API exports), and archives that single object.
# A program that links the archive then sees only the ms_ API: internal
# names cannot clash with its own.
#   localize-archive.sh OUTPUT.a LAYER.a...
set -eu
out=$1
shift
tmp=$(mktemp -d "${out}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ld=${LD:-ld}
objcopy=${OBJCOPY:-objcopy}
ar=${AR:-ar}
"$ld" -r -o "$tmp/migstream.o" --whole-archive "$@" --no-whole-archive
"$objcopy" --localize-hidden "$tmp/migstream.o"
rm -f "$out"
"$ar" rcs "$out" "$tmp/migstream.o"
