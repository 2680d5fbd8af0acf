#!/usr/bin/env python3
"""Hand-made streams of a hypothetical format 1.9 (and of 2.0), written byte
by byte from docs/FORMAT.md without the library's writer, which cannot
write what the format has not defined yet: records of unknown types, map
keys and feature bits a later minor may add (section 11.2), a longer
preamble (section 3.1). The framing and CBOR are tests/pylib/msstream.py's.

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
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from msstream import (DATA, DISCARDED, F_DISCARDED, F_FILL, F_OVERLAYS, FILL, INFO, MUST,  # noqa: E402
                      REGIONS, ZERO, cbor)
import msstream  # noqa: E402

PS = 4096


class Stream(msstream.Stream):
    """Format 1.9 unless told otherwise, by "mkfuture" 1.9."""

    def __init__(self, major=1, minor=9, required=0, optional=0, extension=b""):
        super().__init__("mkfuture", "1.9", major, minor, required, optional, PS, extension)

    def device(self, fields):
        self.device_map(cbor(fields))


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
