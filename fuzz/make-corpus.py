#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from sample streams.

Usage: make-corpus.py OUT_DIR STREAM...

For fuzz_reader each stream is a seed as it is. For fuzz_records each stream
is turned into that target's input format (FORMAT.md framing without the
preamble and checksums: type, flags, u16 length, payload per record, records
over 64 KiB cut). For fuzz_cbor the device state items found in the streams
are seeds, paired with themselves and with each other.
"""
import os
import struct
import sys


def records(b):
    hs = struct.unpack_from("<I", b, 12)[0]
    pos = hs
    while pos + 16 <= len(b):
        t, fl, ln = struct.unpack_from("<HHI", b, pos)
        yield t, fl, b[pos + 16:pos + 16 + ln]
        pos += 16 + ln


def cbor_item_len(b, pos):
    """Length of the CBOR item at pos (definite lengths only)."""
    ib = b[pos]
    major, ai = ib >> 5, ib & 31
    hlen = {24: 2, 25: 3, 26: 5, 27: 9}.get(ai, 1)
    val = ai if ai < 24 else int.from_bytes(b[pos + 1:pos + hlen], "big")
    if major in (2, 3):
        return hlen + val
    if major in (4, 5):
        end = pos + hlen
        for _ in range(val * (2 if major == 5 else 1)):
            end += cbor_item_len(b, end)
        return end - pos
    if major == 7 and ai in (25, 26, 27):
        return hlen
    return hlen


def device_state(payload):
    """The state item (key 4) of a DEVICE map, found by walking the map."""
    pos = 1  # map head of 5 pairs
    for _ in range(5):
        key = payload[pos]
        pos += 1
        n = cbor_item_len(payload, pos)
        if key == 4:
            return payload[pos:pos + n]
        pos += n
    return None


def main():
    out = sys.argv[1]
    states = []
    for d in ("fuzz_reader", "fuzz_records", "fuzz_cbor"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for path in sys.argv[2:]:
        b = open(path, "rb").read()
        name = os.path.splitext(os.path.basename(path))[0]
        open(os.path.join(out, "fuzz_reader", name), "wb").write(b)
        chunks = b""
        for t, fl, pl in records(b):
            pl = pl[:65535]
            chunks += struct.pack("<BBH", t & 0xff, fl & 0xff, len(pl)) + pl
            if t == 4:
                states.append(device_state(pl))
        open(os.path.join(out, "fuzz_records", name), "wb").write(chunks)
    for i, a in enumerate(states):
        for j, b in enumerate(states):
            seed = bytes([min(255, 256 * (len(a) + 1) // (len(a) + len(b) + 1))]) + a + b
            open(os.path.join(out, "fuzz_cbor", "state-%d-%d" % (i, j)), "wb").write(seed)


main()
