#!/usr/bin/env python3
"""Checks that an image is sparse the way migstream-replay promises: every
page whose bytes are all zero is a hole (SEEK_DATA/SEEK_HOLE), every other
page is stored.

    holes.py [--pages] PAGE_SIZE IMAGE...

Prints one summary line per image; with --pages, also one line per page:
"N: data XX*SIZE" (a page of one repeated byte), "N: data" or "N: hole".
Exits 1 when a zero page is stored or a non-zero page is a hole.
"""
import bisect
import os
import sys


def data_ranges(fd, size):
    """[start, end) ranges the file system holds as data."""
    ranges, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        ranges.append((start, end))
        pos = end
    return ranges


def check(path, ps, per_page):
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    ranges = data_ranges(fd, size)
    os.lseek(fd, 0, os.SEEK_SET)
    starts = [s for s, _ in ranges]

    def stored(off):
        i = bisect.bisect_right(starts, off) - 1
        return i >= 0 and off < ranges[i][1]

    bad = 0
    nz = holes = 0
    # Only the first few mismatches are named.
    with os.fdopen(fd, "rb") as f:
        for n in range(size // ps):
            page = f.read(ps)
            zero = page.count(0) == ps
            is_stored = stored(n * ps)
            nz += not zero
            holes += not is_stored
            if zero == is_stored:
                bad += 1
                if bad <= 5:
                    print("%s: page %d is %s but %s" % (path, n, "zero" if zero else "non-zero",
                                                       "stored" if is_stored else "a hole"))
            if per_page:
                if not is_stored:
                    what = "hole"
                elif page.count(page[:1]) == ps:
                    what = "data %02x*%d" % (page[0], ps)
                else:
                    what = "data"
                print("  %d: %s" % (n, what))
    print("%s: %d pages, %d non-zero and stored, %d holes%s" %
          (os.path.basename(path), size // ps, nz, holes, "" if not bad else " (WRONG)"))
    return bad


def main():
    args = sys.argv[1:]
    per_page = args[:1] == ["--pages"]
    if per_page:
        args = args[1:]
    if len(args) < 2:
        sys.exit("usage: holes.py [--pages] PAGE_SIZE IMAGE...")
    ps = int(args[0])
    sys.exit(1 if sum(check(p, ps, per_page) for p in args[1:]) else 0)


if __name__ == "__main__":
    main()
