#!/usr/bin/env python3
"""Hand-made streams for the migstream-dump and migstream-validate cases,
written byte by byte from docs/FORMAT.md without the library's writer, so
that they can hold what the writer never produces (pages never sent, a
device sent twice, damage of several kinds at once). The framing is
tests/pylib/msstream.py's.

    mkstreams.py sparse OUT    valid, with warnings: pages never sent in
                               both regions, device "cpu" instance 0 sent
                               twice, a page sent twice (DATA, then ZERO)
    mkstreams.py damaged OUT   one problem of each kind validate reports,
                               after a preamble with minor 9 and optional
                               feature bit 5 (see damaged() below)
    mkstreams.py dupsource OUT format 1.3: DUPLICATE pages, two of which
                               name sources without DATA (see dupsource())

The contents are listed in each function; the cases' expected outputs were
checked against these lists.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pylib"))
from msstream import DATA, DEVICE, MUST, ZERO, cbor, region  # noqa: E402
import msstream  # noqa: E402

PS = 4096


class Stream(msstream.Stream):
    """By "mkstreams" 1; regions given in pages; DATA pages generated."""

    def __init__(self, minor=0, optional=0):
        super().__init__("mkstreams", "1", minor=minor, optional=optional, page_size=PS)

    def regions(self, *regs):
        super().regions(*(region(rid, name, gpa, pages * PS, PS) for rid, name, gpa, pages in regs))

    def pages_rec(self, rid, extents, bad_checksum=False, count=True):
        """extents: (first, count, state, fill byte or None): each DATA page
        is its fill byte with the page index in its first 8 bytes, to tell
        copies apart."""
        data = b""
        for first, n, state, fill in extents:
            for k in range(n if state == DATA else 0):
                pg = bytearray([fill]) * PS
                pg[0:8] = struct.pack("<Q", first + k)
                data += bytes(pg)
        super().pages_rec(rid, [(first, n, state, 0) for first, n, state, _ in extents], data,
                          bad_checksum, count)

    def device(self, path, instance, schema, version, state, count=True):
        super().device(path, instance, schema, version, cbor(state), count)


def sparse():
    s = Stream()
    s.info("pc-q35-7.2", "sparse: pages never sent")
    # region 0 "ram": 16 pages at gpa 0x100000; region 5: 4 pages, no gpa,
    # a name with colons (--page splits REGION:PFN at the last colon)
    s.regions((0, "ram", 0x100000, 16), (5, "0000:00:01.0/vga.vram", None, 4))
    # ram pages 0..3 DATA (fill 0xa0, first 8 bytes = page index), 4..7 ZERO;
    # pages 8..15 never sent
    s.pages_rec(0, [(0, 4, DATA, 0xA0), (4, 4, ZERO, None)])
    # later copies: page 1 now ZERO, page 2 DATA with fill 0xb2
    s.pages_rec(0, [(1, 1, ZERO, None), (2, 1, DATA, 0xB2)])
    # vga.vram: page 0 DATA (fill 0x76), page 3 ZERO; pages 1..2 never sent
    s.pages_rec(5, [(0, 1, DATA, 0x76), (3, 1, ZERO, None)])
    s.device("cpu", 0, "x86-cpu", 1, {"rip": 1})
    s.device("cpu", 1, "x86-cpu", 1, {"rip": 2})
    s.device("cpu", 0, "x86-cpu", 2, {"rip": 3, "halted": True})  # replaces the first
    s.end()
    return bytes(s.out)


def damaged():
    # minor 9 (newer than this library's: a warning), optional feature bit
    # 5 (unknown: a warning)
    s = Stream(minor=9, optional=1 << 5)
    s.info("pc-q35-7.2", "damaged")                        # record 0: fine
    s.regions((0, "ram", 0, 16))                           # record 1: fine
    s.record(0x8005, 0, b"xyz")                            # record 2: unknown optional
    s.pages_rec(0, [(0, 2, DATA, 0x11)], bad_checksum=True)  # record 3: checksum only
    s.pages_rec(0, [(14, 4, ZERO, None)], count=False)     # record 4: pages 14..17 of 16
    s.record(DEVICE, MUST, cbor({0: "nic", 1: 0, 3: 1, 4: 0}))  # record 5: no schema (key 2)
    s.record(0x8006, MUST, b"must")                        # record 6: unknown must-understand
    s.pages_rec(9, [(0, 1, ZERO, None)], count=False)      # record 7: region 9 never declared
    s.device("cpu", 0, "x86-cpu", 1, {"rip": 1})           # record 8: fine
    s.end(records=99)                                      # record 9: END counts 99 records
    s.out += b"junk"                                       # bytes after END
    return bytes(s.out)


DUPLICATE = 6


def dupsource():
    # format 1.3, required feature DUPLICATES; region 0 "ram", 8 pages
    s = msstream.Stream("mkstreams", "1", minor=3, required=1 << 5, page_size=PS)
    s.regions(region(0, "ram", 0, 8 * PS, PS))
    page = bytearray(b"\x5a") * PS
    page[0:8] = b"source 0"
    # record 1: page 0 DATA, page 1 ZERO
    s.pages_rec(0, [(0, 1, DATA, 0), (1, 1, ZERO, 0)], bytes(page))
    # record 2: page 4 a DUPLICATE of page 0 (fine), page 5 of page 1 (ZERO:
    # an error), page 6 of page 2 (never sent: an error)
    s.pages_rec(0, [(4, 1, DUPLICATE, 0), (5, 1, DUPLICATE, 1), (6, 1, DUPLICATE, 2)])
    s.end()
    return bytes(s.out)


if __name__ == "__main__":
    makers = {"sparse": sparse, "damaged": damaged, "dupsource": dupsource}
    if len(sys.argv) != 3 or sys.argv[1] not in makers:
        sys.exit(__doc__)
    with open(sys.argv[2], "wb") as f:
        f.write(makers[sys.argv[1]]())
