#!/usr/bin/env python3
"""Hand-made streams for the migstream-dump and migstream-validate cases,
written byte by byte from docs/FORMAT.md without the library's writer, so
that they can hold what the writer never produces (pages never sent, a
device sent twice, damage of several kinds at once). XXH3-64 comes from the
system's libxxhash, the one the library links.

    mkstreams.py sparse OUT    valid, with warnings: pages never sent in
                               both regions, device "cpu" instance 0 sent
                               twice, a page sent twice (DATA, then ZERO)
    mkstreams.py damaged OUT   one problem of each kind validate reports,
                               after a preamble with minor 3 and optional
                               feature bit 5 (see damaged() below)

The contents are listed in each function; the cases' expected outputs were
checked against these lists.
"""
import ctypes
import struct
import sys

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed):
    return _xxh.XXH3_64bits_withSeed(data, len(data), seed)


def head(major, v):
    """CBOR item head, shortest form (FORMAT.md section 10)."""
    if v < 24:
        return bytes([major << 5 | v])
    for n, ai in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if v < 1 << (8 * n):
            return bytes([major << 5 | ai]) + v.to_bytes(n, "big")
    raise ValueError(v)


def cbor(x):
    if x is True:
        return b"\xf5"
    if x is False:
        return b"\xf4"
    if isinstance(x, int):
        return head(0, x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        return head(3, len(x.encode())) + x.encode()
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(cbor(i) for i in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(cbor(k) + cbor(v) for k, v in x.items())
    raise TypeError(x)


INFO, REGIONS, PAGES, DEVICE, END = 1, 2, 3, 4, 5
DATA, ZERO = 1, 2
MUST = 1
PS = 4096


class Stream:
    def __init__(self, minor=0, optional=0):
        p = b"\x89MIGS\r\n\x1a" + struct.pack("<HHIQQII", 1, minor, 112, 0, optional, PS, 0)
        p += b"mkstreams".ljust(32, b"\0") + b"1".ljust(32, b"\0")
        self.chain = xxh3(p, 0)
        self.out = bytearray(p + struct.pack("<Q", self.chain))
        self.records = 0
        self.pages = {}
        self.devices = 0

    def record(self, rtype, flags, payload, bad_checksum=False):
        hdr = struct.pack("<HHI", rtype, flags, len(payload))
        self.chain = xxh3(hdr + payload, self.chain)
        stored = self.chain ^ (1 if bad_checksum else 0)
        self.out += hdr + struct.pack("<Q", stored) + payload
        self.chain = stored  # the chain goes on from the stored value (4.2)
        self.records += 1

    def info(self, machine, description):
        self.record(INFO, 0, cbor({0: machine, 1: description}))

    def regions(self, *regs):
        items = []
        for rid, name, gpa, pages in regs:
            m = {0: rid, 1: name}
            if gpa is not None:
                m[2] = gpa
            m.update({3: pages * PS, 4: PS})
            items.append(m)
        self.record(REGIONS, MUST, cbor(items))

    def pages_rec(self, region, extents, bad_checksum=False, count=True):
        """extents: (first, count, state, fill byte or None)."""
        p = struct.pack("<IIB7x", region, len(extents), 0)
        data = b""
        for first, n, state, fill in extents:
            p += struct.pack("<QIB3xQ", first, n, state, 0)
            if state == DATA:
                for k in range(n):
                    pg = bytearray([fill]) * PS
                    pg[0:8] = struct.pack("<Q", first + k)  # page index, to tell copies apart
                    data += bytes(pg)
            if count:
                self.pages[state] = self.pages.get(state, 0) + n
        self.record(PAGES, MUST, p + data, bad_checksum)

    def device(self, path, instance, schema, version, state, count=True):
        self.record(DEVICE, MUST, cbor({0: path, 1: instance, 2: schema, 3: version, 4: state}))
        if count:
            self.devices += 1

    def end(self, records=None, devices=None):
        m = {0: self.records if records is None else records, 1: len(self.out),
             2: dict(sorted(self.pages.items())), 3: self.devices if devices is None else devices}
        self.record(END, MUST, cbor(m))


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
    # minor 3 (newer than 1.0: a warning), optional feature bit 5 (unknown:
    # a warning)
    s = Stream(minor=3, optional=1 << 5)
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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("sparse", "damaged"):
        sys.exit(__doc__)
    with open(sys.argv[2], "wb") as f:
        f.write({"sparse": sparse, "damaged": damaged}[sys.argv[1]]())
