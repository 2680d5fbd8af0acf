#!/usr/bin/env python3
"""Generators of hostile inputs, one per class of docs/SECURITY.md's cost
model ("Cost"): small inputs that made a tool do work, take memory or
write bytes out of proportion to their size. Each takes a size parameter
@n (about the input's size in bytes, unless its comment says otherwise)
so that run.py can compare a tool's cost on sizes n and k*n.

    gen.py CLASS N OUT      writes the input of class CLASS, size N, to OUT

Streams are written byte by byte from docs/FORMAT.md (tests/pylib), QEMU
streams from docs/QEMU.md.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from msstream import ZERO, Stream, region  # noqa: E402

CP = 4096  # pages per chunk of a page-state map (libmigstream/state/region_map.h)
REGION_PAGES = 1 << 31  # 8 TiB of 4 KiB pages: a sparse image ext4 can hold


def pm_runs(n):
    """Page-state maps: N chunks with an entry, then M records each with one
    long ZERO run over the same pages, beyond them. A map that scans its
    table for every long run costs N * M. (N stays below 2^17: the region
    holds 2^19 chunks.)"""
    s = Stream("resources", "1")
    s.regions(region(0, "ram", 0, REGION_PAGES * 4096, 4096))
    chunks, runs = min(n // 48, 1 << 17), n // 56
    ext = [(c * CP, CP, ZERO, 0) for c in range(chunks)]
    for i in range(0, chunks, 2000):
        s.pages_rec(0, ext[i:i + 2000])
    far = (1 << 18) * CP
    length = min(REGION_PAGES - far, 4 * chunks * CP)
    for _ in range(runs):
        s.pages_rec(0, [(far, length, ZERO, 0)])
    return s.end()


def pm_spans(n):
    """Page-state maps: M long ZERO runs over distinct pages, each in its own
    record, from the top of a 64 PiB region down: a sorted array of spans
    moves its whole tail for each."""
    s = Stream("resources", "1")
    pages = 1 << 44
    s.regions(region(0, "ram", 0, pages * 4096, 4096))
    runs = n // 56
    for m in range(runs):
        s.pages_rec(0, [((runs - m) * 16 * CP, 16 * CP, ZERO, 0)])
    return s.end()


GENERATORS = {
    "pm-runs": pm_runs,
    "pm-spans": pm_spans,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in GENERATORS:
        sys.exit("usage: gen.py CLASS N OUT\nclasses: " + " ".join(sorted(GENERATORS)))
    data = GENERATORS[sys.argv[1]](int(sys.argv[2]))
    with open(sys.argv[3], "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
