#!/usr/bin/env python3
"""Hand-made streams of a hypothetical format 1.9 (and of 2.0), written byte
by byte from docs/FORMAT.md without the library's writer, which cannot
write what the format has not defined yet: records of unknown types, map
keys and feature bits a later minor may add (section 11.2), a longer
preamble (section 3.1). XXH3-64 comes from the system's libxxhash, the one
the library links.

    mkfuture.py DIR    writes every stream below into DIR; refuses to
                       replace a file that exists

Read as usual, the unknowns reported by migstream-dump and -validate:
    minor9-records.mig   unknown record types 0x7ff0, 0x7ff1 (empty), 0x7fff
                         and a private 0x8003, none marked must-understand
    minor9-keys.mig      unknown keys in INFO, region, ROUND, OVERLAY,
                         DEVICE and END maps (values of every CBOR kind,
                         nested), with the 1.1 required bits it uses
    minor9-preamble.mig  a 136-byte preamble (a 24-byte extension) and
                         unknown optional feature bits 32, 62 and 63
Refused, with a message naming what is not supported:
    major2.mig           major version 2
    required-bit.mig     required feature bit 63 (and a PAGES record with
                         page state 6 that a reader must never reach)
    must-understand.mig  record type 0x7ffe marked must-understand

The numbers a later version plays with are far from those the format will
assign next (record types from 0x7ff0, map keys from 20, feature bits from
32), so that a new minor version does not make them known by accident.

These streams are frozen like the writer's golden ones (see README.md):
this program only says how they were made; running it must reproduce them
byte for byte, and the compat test checks that it does.
"""
import ctypes
import os
import struct
import sys

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed):
    return _xxh.XXH3_64bits_withSeed(bytes(data), len(data), seed)


# ---- CBOR in the profile of FORMAT.md section 10, shortest forms
def head(major, v):
    if v < 24:
        return bytes([major << 5 | v])
    for n, ai in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if v < 1 << (8 * n):
            return bytes([major << 5 | ai]) + v.to_bytes(n, "big")
    raise ValueError(v)


def cbor(x):
    """Maps keep their insertion order: the format's own maps are written
    with ascending keys by the caller."""
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


INFO, REGIONS, PAGES, DEVICE, END, ROUND, OVERLAY = 1, 2, 3, 4, 5, 6, 7
DATA, ZERO, DISCARDED, FILL = 1, 2, 3, 4
MUST = 1  # MUST_UNDERSTAND (section 4.1)
F_DISCARDED, F_FILL, F_IN_PLACE, F_OVERLAYS = 1, 2, 4, 8  # section 3.2
PS = 4096


class Stream:
    def __init__(self, major=1, minor=9, required=0, optional=0, extension=b""):
        """extension: bytes between offset 104 and the checksum (section 3.1)."""
        size = 112 + len(extension)
        assert size % 8 == 0
        p = b"\x89MIGS\r\n\x1a" + struct.pack("<HHIQQII", major, minor, size, required, optional,
                                               PS, 0)
        p += b"mkfuture".ljust(32, b"\0") + b"1.9".ljust(32, b"\0") + extension
        self.chain = xxh3(p, 0)
        self.out = bytearray(p + struct.pack("<Q", self.chain))
        self.records = 0
        self.pages = {}
        self.devices = self.rounds = self.overlays = 0

    def record(self, rtype, flags, payload):
        hdr = struct.pack("<HHI", rtype, flags, len(payload))
        self.chain = xxh3(hdr + payload, self.chain)  # section 4.2
        self.out += hdr + struct.pack("<Q", self.chain) + payload
        self.records += 1

    def pages_rec(self, region, extents, data):
        """extents: (first, count, state, arg); data: the DATA pages' bytes."""
        p = struct.pack("<IIB7x", region, len(extents), 0)
        for first, n, state, arg in extents:
            p += struct.pack("<QIB3xQ", first, n, state, arg)
            self.pages[state] = self.pages.get(state, 0) + n
        self.record(PAGES, MUST, p + data)

    def device(self, fields):
        self.record(DEVICE, MUST, cbor(fields))
        self.devices += 1

    def round(self, fields):
        self.record(ROUND, 0, cbor(fields))
        self.rounds += 1

    def overlay(self, maps):
        self.record(OVERLAY, MUST, cbor(maps))
        self.overlays += len(maps)

    def end(self, extra=None):
        """extra: keys after the ones section 8 defines, ascending."""
        m = {0: self.records, 1: len(self.out), 2: dict(sorted(self.pages.items())),
             3: self.devices}
        if self.rounds:
            m[4] = self.rounds
        if self.overlays:
            m[5] = self.overlays
        m.update(extra or {})
        self.record(END, MUST, cbor(m))
        return bytes(self.out)


def page(text):
    """One page of a repeated line: easy to recognise in an image."""
    b = text.encode()
    return (b * (PS // len(b) + 1))[:PS]


def minor9_records():
    s = Stream()
    s.record(INFO, 0, cbor({0: "pc-q35-9.0"}))
    s.record(0x7FF0, 0, cbor({0: "a record type of format 1.9"}))
    s.record(REGIONS, MUST, cbor([{0: 0, 1: "ram", 2: 0, 3: 16 * PS, 4: PS}]))
    s.record(0x7FF1, 0, b"")
    s.pages_rec(0, [(0, 1, DATA, 0), (1, 15, ZERO, 0)], page("format 1.9 page 0\n"))
    s.record(0x7FFF, 0, bytes(range(40)))
    s.device({0: "cpu", 1: 0, 2: "x86-cpu", 3: 1, 4: {"rip": 0xFFF0}})
    s.record(0x8003, 0, b"private")
    return s.end()


def minor9_keys():
    s = Stream(required=F_DISCARDED | F_FILL | F_OVERLAYS)
    s.record(INFO, 0, cbor({0: "pc-q35-9.0", 1: "unknown keys in every extensible map",
                            20: "a later INFO key", 1000: {0: [1, -2, {3: b"\x00\xff"}]}}))
    s.record(REGIONS, MUST, cbor([
        {0: 0, 1: "ram", 2: 0, 3: 12 * PS, 4: PS, 20: True, 21: "numa0"},
        {0: 1, 1: "vram", 3: 4 * PS, 4: PS, 22: [None, {"x": False}, [[[[1]]]]]},
    ]))
    s.round({0: 0, 1: 0, 20: "a later ROUND key", 21: 1})
    s.pages_rec(0, [(0, 1, DATA, 0), (1, 7, ZERO, 0), (8, 2, FILL, 0xCCCCCCCCCCCCCCCC),
                    (10, 2, DISCARDED, 0)], page("format 1.9 keys page 0\n"))
    s.pages_rec(1, [(0, 4, ZERO, 0)], b"")
    s.round({0: 1, 1: 1, 2: PS, 3: 1, 4: True, 20: {0: b""}})
    s.pages_rec(0, [(1, 1, DATA, 0)], page("format 1.9 keys page 1, round 1\n"))
    # Unknown keys of the overlay map itself are ignored; of params, refused
    # (section 7.2): only the map gets one.
    s.overlay([{0: 2, 1: 1, 2: {0: 1}, 20: "a later overlay key"}])
    s.device({0: "cpu", 1: 0, 2: "x86-cpu", 3: 1, 4: {"rip": 1},
              20: "a later DEVICE key"})
    return s.end({20: "a later END key", 21: [1, 2, 3]})


def minor9_preamble():
    ext = bytes(range(0xA0, 0xB8))  # 24 bytes a 1.9 reader would understand
    s = Stream(optional=1 << 63 | 1 << 62 | 1 << 32, extension=ext)
    s.record(REGIONS, MUST, cbor([{0: 3, 1: "ram", 2: 0x100000, 3: 4 * PS, 4: PS}]))
    s.pages_rec(3, [(0, 2, ZERO, 0), (2, 1, DATA, 0), (3, 1, ZERO, 0)],
                page("longer preamble\n"))
    return s.end()


def major2():
    # A major version may change anything after byte 16 (section 11.1);
    # this one happens to look like 1.x, which a reader must not assume.
    s = Stream(major=2, minor=0)
    s.record(REGIONS, MUST, cbor([{0: 0, 1: "ram", 2: 0, 3: 4 * PS, 4: PS}]))
    s.pages_rec(0, [(0, 4, ZERO, 0)], b"")
    return s.end()


def required_bit():
    s = Stream(required=1 << 63 | F_FILL)
    s.record(REGIONS, MUST, cbor([{0: 0, 1: "ram", 2: 0, 3: 4 * PS, 4: PS}]))
    s.pages_rec(0, [(0, 4, 6, 0)], b"")  # state 6: what bit 63 might bring
    return s.end()


def must_understand():
    s = Stream()
    s.record(REGIONS, MUST, cbor([{0: 0, 1: "ram", 2: 0, 3: 4 * PS, 4: PS}]))
    s.pages_rec(0, [(0, 4, ZERO, 0)], b"")
    s.record(0x7FFE, MUST, cbor({0: "changes the final state"}))
    return s.end()


STREAMS = {
    "minor9-records.mig": minor9_records,
    "minor9-keys.mig": minor9_keys,
    "minor9-preamble.mig": minor9_preamble,
    "major2.mig": major2,
    "required-bit.mig": required_bit,
    "must-understand.mig": must_understand,
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in STREAMS.items():
        path = os.path.join(out, name)
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "xb") as f:
            f.write(make())
        try:
            os.link(tmp, path)  # atomic, and never replaces a frozen stream
        except FileExistsError:
            sys.exit("mkfuture.py: %s exists: frozen streams are never rewritten" % path)
        finally:
            os.unlink(tmp)


if __name__ == "__main__":
    main()
