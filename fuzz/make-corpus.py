#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from sample streams.

Usage: make-corpus.py OUT_DIR STREAM...

For fuzz_reader each stream is a seed as it is. For fuzz_records each stream
is turned into that target's input format (FORMAT.md framing without the
preamble and checksums: type, flags, u16 length, payload per record, records
over 64 KiB cut). For fuzz_cbor the device state items found in the streams
are seeds, paired with themselves and with each other.

fuzz_replay takes each stream as it is and in fuzz_records' format with an
empty END payload, which the harness fills with the right totals
(fuzz/fuzz_frame.h). fuzz_diff takes every ordered pair of streams as
"u32 LE length of A, A, B", text and (top bit set) JSON, and each stream in
the framed form paired with itself.
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


def framed(b, end_totals=False):
    """fuzz_records' input format; with end_totals, END payloads left empty
    for the harness to fill in (fuzz_replay, fuzz_diff)."""
    chunks = b""
    for t, fl, pl in records(b):
        pl = b"" if end_totals and t == 5 else pl[:65535]
        chunks += struct.pack("<BBH", t & 0xff, fl & 0xff, len(pl)) + pl
    return chunks


def main():
    out = sys.argv[1]
    states = []
    streams = []
    for d in ("fuzz_reader", "fuzz_records", "fuzz_cbor", "fuzz_replay", "fuzz_diff"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for path in sys.argv[2:]:
        b = open(path, "rb").read()
        name = os.path.splitext(os.path.basename(path))[0]
        streams.append((name, b))
        open(os.path.join(out, "fuzz_reader", name), "wb").write(b)
        for t, fl, pl in records(b):
            if t == 4:
                states.append(device_state(pl[:65535]))
        open(os.path.join(out, "fuzz_records", name), "wb").write(framed(b))
        open(os.path.join(out, "fuzz_replay", name), "wb").write(b)
        open(os.path.join(out, "fuzz_replay", name + "-framed"), "wb").write(framed(b, True))
    for na, a in streams:
        for nb, b in streams:
            for json, suffix in ((0, ""), (1 << 31, "-json")):
                seed = struct.pack("<I", len(a) | json) + a + b
                open(os.path.join(out, "fuzz_diff", na + "-" + nb + suffix), "wb").write(seed)
        f = framed(a, True)
        seed = struct.pack("<I", len(f)) + f + f
        open(os.path.join(out, "fuzz_diff", na + "-framed"), "wb").write(seed)
    for i, a in enumerate(states):
        for j, b in enumerate(states):
            seed = bytes([min(255, 256 * (len(a) + 1) // (len(a) + len(b) + 1))]) + a + b
            open(os.path.join(out, "fuzz_cbor", "state-%d-%d" % (i, j)), "wb").write(seed)


main()
