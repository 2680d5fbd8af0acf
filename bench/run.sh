#!/bin/sh
# Builds a release build in build-bench/ (no sanitizers, no tests) and prints
# the benchmark table of docs/PERFORMANCE.md: medians of several runs, each
# result as a ratio against a baseline measured in the same run.
#
# usage: bench/run.sh [--runs N] [--size MIB] [--profiles LIST]
#                     [--no-real-guest] [--make-real-guest] [--channels [N]]
#   --runs N           runs per measurement (default 5)
#   --size MIB         synthetic image size (default 1024)
#   --profiles LIST    zero,idle-linux,busy-db,huge-2m (default all)
#   --real-guest       add the real-guest column when bench/real-guest.sh has
#                      saved its image (build-bench/guest/); on by default
#   --no-real-guest    leave it out
#   --make-real-guest  run bench/real-guest.sh first if the image is missing
#   --channels [N]     instead, the channels table: aggregate send and receive
#                      over 1 and N channels (default 2), raw and zstd-1
#                      (profiles idle-linux,busy-db unless --profiles)
# Images, streams and outputs live in build-bench/data/ (gitignored); images
# are generated once and reused (the generators are deterministic).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build-bench"
runs=5
size=1024
profiles=zero,idle-linux,busy-db,huge-2m
real=1
make_real=0
channels=0
profiles_given=0

while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --profiles) profiles=$2; profiles_given=1; shift 2 ;;
    --real-guest) real=1; shift ;;
    --no-real-guest) real=0; shift ;;
    --make-real-guest) make_real=1; real=1; shift ;;
    --channels)
        channels=2
        case ${2:-} in [0-9]*) channels=$2; shift ;; esac
        shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for tool in meson ninja zstd cp; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 2; }
done

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" --buildtype=release -Db_sanitize=none -Db_ndebug=true \
        -Dtests=false -Dtools=false -Dfuzz=false -Dbench=true >/dev/null
fi
meson compile -C "$build" -j 2 bench/migstream-bench >/dev/null

if [ "$channels" != 0 ]; then
    mkdir -p "$build/data"
    cd "$root"
    [ "$profiles_given" = 1 ] || profiles=idle-linux,busy-db
    exec "$build/bench/migstream-bench" channels-run --dir "$build/data" --runs "$runs" \
        --size "$size" --profiles "$profiles" --channels "$channels"
fi

guest="$build/guest"
if [ "$make_real" = 1 ] && [ ! -f "$guest/guest.img" ]; then
    "$here/real-guest.sh" "$guest"
fi
set --
if [ "$real" = 1 ] && [ -f "$guest/guest.img" ]; then
    set -- --real-guest "$guest/guest.img"
    [ -f "$guest/qemu.mig" ] && set -- "$@" --qemu-stream "$guest/qemu.mig"
fi

mkdir -p "$build/data"
cd "$root"
exec "$build/bench/migstream-bench" run --dir "$build/data" --runs "$runs" --size "$size" \
    --profiles "$profiles" "$@"
