#!/usr/bin/env python3
"""Writes hand-made streams for the migstream-replay cases, byte by byte from
docs/FORMAT.md, without the library's writer: an independent check that the
replay tool applies what the format says (framing: tests/pylib/msstream.py).

    mkstream.py vector-pages OUT   FORMAT.md test vector 12.2, exactly
    mkstream.py edge OUT           the edge cases listed in edge() below

Prints the stream digest (the END record's checksum) as 0x%016x.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pylib"))
from msstream import DATA, ZERO, Stream, cbor, region  # noqa: E402


def vector_pages():
    s = Stream("example", "1.0")
    s.info(machine="pc-q35-7.2")
    s.regions(region(0, "ram", 0, 0x4000, 0x1000))
    s.pages_rec(0, [(0, 1, ZERO, 0), (1, 1, DATA, 0), (2, 2, ZERO, 0)], b"\xab" * 4096)
    return s


def edge():
    """Region 7 "0000:00:01.0/vga.vram" (no gpa, 8 pages of 4 KiB):
         record A: pages 0..2 DATA (0x11, 0x22, 0x33), page 3 ZERO,
                   page 5 DATA whose bytes are all zero
         record B: page 2 ZERO (was DATA: must read back as zeros)
         pages 4, 6, 7 never sent: missing 3; final data 2, zero 3.
       Region 3 "../../escape" (gpa 0x100000, 4 pages of 8 KiB):
         page 0 DATA (0x44), pages 1..3 ZERO: data 1, zero 3.
       Region 1 declared late, in a second REGIONS record, with a name that
         needs JSON escaping; no pages: missing 1.
       Devices: "../../etc/passwd" sent twice (the second wins: schema s2,
         version 2), "cpu" instances 1 then 0.
       A private record 0x8001 without MUST_UNDERSTAND: skipped."""
    s = Stream("mkstream", "1")
    s.info(machine="pc", description="edge cases")
    s.regions(region(7, "0000:00:01.0/vga.vram", None, 8 * 4096, 4096),
              region(3, "../../escape", 0x100000, 4 * 8192, 8192))
    s.pages_rec(7, [(0, 3, DATA, 0), (3, 1, ZERO, 0), (5, 1, DATA, 0)],
                b"\x11" * 4096 + b"\x22" * 4096 + b"\x33" * 4096 + b"\0" * 4096)
    s.pages_rec(7, [(2, 1, ZERO, 0)])
    s.device("../../etc/passwd", 0, "s", 1, cbor({"a": 1}))
    s.regions(region(1, 'tab\there "q"\n', 0x200000, 4096, 4096))
    s.pages_rec(3, [(0, 1, DATA, 0), (1, 3, ZERO, 0)], b"\x44" * 8192)
    s.device("cpu", 1, "x86-cpu", 1, cbor([1]))
    s.record(0x8001, 0, b"private")
    s.device("cpu", 0, "x86-cpu", 1, cbor([0]))
    s.device("../../etc/passwd", 0, "s2", 2, cbor({"a": 2, "b": b"\x00\xff"}))
    return s


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("vector-pages", "edge"):
        sys.exit("usage: mkstream.py vector-pages|edge OUT")
    s = vector_pages() if sys.argv[1] == "vector-pages" else edge()
    with open(sys.argv[2], "wb") as f:
        f.write(s.end())
    print("0x%016x" % s.chain)


if __name__ == "__main__":
    main()
