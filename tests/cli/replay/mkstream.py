#!/usr/bin/env python3
"""Writes hand-made streams for the migstream-replay cases, byte by byte from
docs/FORMAT.md, without the library's writer: an independent check that the
replay tool applies what the format says. XXH3-64 comes from the system's
libxxhash (the library links the same one).

    mkstream.py vector-pages OUT   FORMAT.md test vector 12.2, exactly
    mkstream.py edge OUT           the edge cases listed in edge() below

Prints the stream digest (the END record's checksum) as 0x%016x.
"""
import ctypes
import struct
import sys

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed):
    return _xxh.XXH3_64bits_withSeed(data, len(data), seed)


# ---- CBOR, shortest forms (FORMAT.md section 10)
def head(major, v):
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
    if x is None:
        return b"\xf6"
    if isinstance(x, int):
        return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return head(3, len(b)) + b
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(cbor(i) for i in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(cbor(k) + cbor(v) for k, v in x.items())
    raise TypeError(x)


DATA, ZERO = 1, 2
MUST = 1  # MUST_UNDERSTAND


class Stream:
    def __init__(self, name, version, page_size=4096):
        pre = b"\x89MIGS\r\n\x1a" + struct.pack("<HHIQQII", 1, 0, 112, 0, 0, page_size, 0)
        pre += name.encode().ljust(32, b"\0") + version.encode().ljust(32, b"\0")
        self.seed = xxh3(pre, 0)
        self.out = bytearray(pre + struct.pack("<Q", self.seed))
        self.records = 0
        self.pages = {}
        self.devices = 0

    def record(self, rtype, flags, payload):
        h8 = struct.pack("<HHI", rtype, flags, len(payload))
        self.seed = xxh3(h8 + payload, self.seed)
        self.out += h8 + struct.pack("<Q", self.seed) + payload
        self.records += 1

    def info(self, machine=None, description=None):
        m = {}
        if machine is not None:
            m[0] = machine
        if description is not None:
            m[1] = description
        self.record(1, 0, cbor(m))

    def regions(self, *regs):
        arr = []
        for rid, name, gpa, size, ps in regs:
            m = {0: rid, 1: name}
            if gpa is not None:
                m[2] = gpa
            m[3] = size
            m[4] = ps
            arr.append(m)
        self.record(2, MUST, cbor(arr))

    def pages_rec(self, region, extents, data):
        """extents: (first, count, state); data: the DATA pages' bytes."""
        p = struct.pack("<IIB7x", region, len(extents), 0)
        for first, count, state in extents:
            p += struct.pack("<QIB3xQ", first, count, state, 0)
            self.pages[state] = self.pages.get(state, 0) + count
        self.record(3, MUST, p + data)

    def device(self, path, instance, schema, version, state):
        """state: one encoded CBOR item, embedded as is (FORMAT.md section 7)."""
        payload = head(5, 5) + cbor(0) + cbor(path) + cbor(1) + cbor(instance)
        payload += cbor(2) + cbor(schema) + cbor(3) + cbor(version) + cbor(4) + state
        self.record(4, MUST, payload)
        self.devices += 1

    def end(self):
        totals = {0: self.records, 1: len(self.out),
                  2: {k: v for k, v in sorted(self.pages.items()) if v},
                  3: self.devices}
        self.record(5, MUST, cbor(totals))
        return self.seed


def vector_pages():
    s = Stream("example", "1.0")
    s.info(machine="pc-q35-7.2")
    s.regions((0, "ram", 0, 0x4000, 0x1000))
    s.pages_rec(0, [(0, 1, ZERO), (1, 1, DATA), (2, 2, ZERO)], b"\xab" * 4096)
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
    s.regions((7, "0000:00:01.0/vga.vram", None, 8 * 4096, 4096),
              (3, "../../escape", 0x100000, 4 * 8192, 8192))
    s.pages_rec(7, [(0, 3, DATA), (3, 1, ZERO), (5, 1, DATA)],
                b"\x11" * 4096 + b"\x22" * 4096 + b"\x33" * 4096 + b"\0" * 4096)
    s.pages_rec(7, [(2, 1, ZERO)], b"")
    s.device("../../etc/passwd", 0, "s", 1, cbor({"a": 1}))
    s.regions((1, 'tab\there "q"\n', 0x200000, 4096, 4096))
    s.pages_rec(3, [(0, 1, DATA), (1, 3, ZERO)], b"\x44" * 8192)
    s.device("cpu", 1, "x86-cpu", 1, cbor([1]))
    s.record(0x8001, 0, b"private")
    s.device("cpu", 0, "x86-cpu", 1, cbor([0]))
    s.device("../../etc/passwd", 0, "s2", 2, cbor({"a": 2, "b": b"\x00\xff"}))
    return s


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("vector-pages", "edge"):
        sys.exit("usage: mkstream.py vector-pages|edge OUT")
    s = vector_pages() if sys.argv[1] == "vector-pages" else edge()
    digest = s.end()
    with open(sys.argv[2], "wb") as f:
        f.write(s.out)
    print("0x%016x" % digest)


if __name__ == "__main__":
    main()
