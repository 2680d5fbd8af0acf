#!/bin/sh
# Interleaved pairs on guest memory images: each round runs every
# measurement once, in turn, so that a machine that gets busier or quieter
# moves both sides of a ratio alike; prints the median of the per-round
# ratios. Quicker than bench/run.sh's whole table when only these ratios
# are wanted (PERFORMANCE.md, "Smaller streams and two-core scaling").
#
# usage: bench/pairs.sh [--runs N] [--bench PATH] IMAGE...
#   --runs N       rounds (default 9)
#   --bench PATH   a migstream-bench binary (default: build-bench's, built
#                  as bench/run.sh builds it)
# Ratios, per image:
#   zstd-1 2 threads / 1 thread     (speed)
#   zstd-1+dup 2 threads / 1 thread (speed, DUPLICATE pages on)
#   zstd-1+dup / zstd-1             (speed, 1 thread)
#   zstd-3+dup / zstd-3             (speed, 1 thread)
#   raw / memcpy                    (speed, 1 thread)
# and the load average before the first and after the last round.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
runs=9
bench=
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --bench) bench=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "pairs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "pairs.sh: give at least one image (see --help)" >&2; exit 2; }
if [ -z "$bench" ]; then
    build="$root/build-bench"
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Db_sanitize=none -Db_ndebug=true \
            -Dtests=false -Dtools=false -Dfuzz=false -Dbench=true >/dev/null
    fi
    meson compile -C "$build" -j 2 bench/migstream-bench >/dev/null
    bench="$build/bench/migstream-bench"
fi

# seconds of one encode: FEATURES LEVEL THREADS IMAGE
enc() {
    MIGSTREAM_BENCH_FEATURES=$1 "$bench" encode "$4" 4096 "$2" "$3" 0 | cut -d' ' -f1
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for img in "$@"; do
    [ -r "$img" ] || { echo "pairs.sh: cannot read $img" >&2; exit 2; }
    log=$(mktemp)
    i=0
    while [ $i -lt "$runs" ]; do
        m=$("$bench" memcpy "$img" | cut -d' ' -f1)
        r0=$(enc 0 0 1 "$img")
        a1=$(enc 0 1 1 "$img")
        a2=$(enc 0 1 2 "$img")
        d1=$(enc 32 1 1 "$img")
        d2=$(enc 32 1 2 "$img")
        c3=$(enc 0 3 1 "$img")
        e3=$(enc 32 3 1 "$img")
        echo "$m $r0 $a1 $a2 $d1 $d2 $c3 $e3" >>"$log"
        i=$((i + 1))
    done
    python3 - "$img" "$log" <<'EOF'
import statistics, sys
img, log = sys.argv[1], sys.argv[2]
rows = [[float(x) for x in line.split()] for line in open(log)]
def med(f):
    v = sorted(f(r) for r in rows)
    return "%.2fx (%.2f to %.2f)" % (statistics.median(v), v[0], v[-1])
print(img, "(%d rounds; speed ratios, medians, range)" % len(rows))
print("  zstd-1 2 threads / 1 thread     ", med(lambda r: r[2] / r[3]))
print("  zstd-1+dup 2 threads / 1 thread ", med(lambda r: r[4] / r[5]))
print("  zstd-1+dup / zstd-1             ", med(lambda r: r[2] / r[4]))
print("  zstd-3+dup / zstd-3             ", med(lambda r: r[6] / r[7]))
print("  raw / memcpy                    ", med(lambda r: r[0] / r[1]))
EOF
    rm -f "$log"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
