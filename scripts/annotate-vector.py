#!/usr/bin/env python3
"""Print a libmigstream stream as an annotated hex block for docs/FORMAT.md.

Usage: annotate-vector.py NAME STREAM.bin

The output is the block format of FORMAT.md section 12: "OFFSET: bytes # note",
with runs of one repeated byte longer than 16 written as XX*N. This decodes
the framing from the spec alone (it does not verify checksums), so it also
serves as a second, independent reading of the layout.
"""
import struct
import sys

STATES = {1: "DATA", 2: "ZERO", 3: "DISCARDED", 4: "FILL", 5: "IN_PLACE"}
TYPES = {1: "INFO", 2: "REGIONS", 3: "PAGES", 4: "DEVICE", 5: "END", 6: "ROUND",
         7: "OVERLAY", 8: "PART"}
KEYS = {
    1: {0: "machine", 1: "description"},
    2: {0: "id", 1: "name", 2: "gpa", 3: "size", 4: "page_size"},
    4: {0: "path", 1: "instance", 2: "schema", 3: "version", 4: "state"},
    5: {0: "records", 1: "bytes", 2: "pages", 3: "devices", 4: "rounds", 5: "overlays"},
    6: {0: "number", 1: "tracker", 2: "granularity", 3: "dirty", 4: "final"},
    7: {0: "gfn", 1: "kind", 2: "params"},
    8: {0: "migration", 1: "index", 2: "count"},
}


def hexs(b):
    out, i = [], 0
    while i < len(b):
        j = i
        while j < len(b) and b[j] == b[i]:
            j += 1
        if j - i > 16:
            out.append("%02x*%d" % (b[i], j - i))
        else:
            out.extend("%02x" % x for x in b[i:j])
        i = j
    return " ".join(out)


class Out:
    def __init__(self):
        self.lines = []

    def emit(self, off, b, note, width=16):
        if len(b) <= width or len(set(b)) == 1 or len(hexs(b)) <= 48:
            self.lines.append("%04x: %-48s # %s" % (off, hexs(b), note))
            return
        for k in range(0, len(b), width):
            n = note if k == 0 else note + " (cont.)"
            self.lines.append("%04x: %-48s # %s" % (off + k, hexs(b[k:k + width]), n))


def scalar(b, pos):
    """(end, text) for a scalar item at pos, or None for a container."""
    ib = b[pos]
    major, ai = ib >> 5, ib & 31
    hlen = {24: 2, 25: 3, 26: 5, 27: 9}.get(ai, 1)
    val = ai if ai < 24 else int.from_bytes(b[pos + 1:pos + hlen], "big")
    if major == 0:
        return pos + hlen, "%d" % val if val < 4096 else "0x%x" % val
    if major == 1:
        return pos + hlen, "%d" % (-1 - val)
    if major == 3:
        return pos + hlen + val, '"%s"' % b[pos + hlen:pos + hlen + val].decode()
    if major == 2:
        return pos + hlen + val, "h'%s'" % b[pos + hlen:pos + hlen + val].hex()
    if major == 7 and ai in (20, 21, 22):
        return pos + 1, {20: "false", 21: "true", 22: "null"}[ai]
    return None


def cbor_items(b, pos, depth, out, base, label, keys=None):
    """Annotate one CBOR item: heads on their own lines, short scalars inline."""
    ib = b[pos]
    major, ai = ib >> 5, ib & 31
    hlen = {24: 2, 25: 3, 26: 5, 27: 9}.get(ai, 1)
    val = ai if ai < 24 else int.from_bytes(b[pos + 1:pos + hlen], "big")
    ind = "  " * depth
    if major in (0, 1):
        v = val if major == 0 else -1 - val
        out.emit(base + pos, b[pos:pos + hlen], "%s%s%d" % (ind, label, v))
        return pos + hlen
    if major in (2, 3):
        end = pos + hlen + val
        if major == 3:
            txt = '"%s"' % b[pos + hlen:end].decode()
        else:
            txt = "h'%s'" % b[pos + hlen:end].hex()
        out.emit(base + pos, b[pos:end], "%s%s%s" % (ind, label, txt))
        return end
    if major == 4:
        out.emit(base + pos, b[pos:pos + hlen], "%s%sarray(%d)" % (ind, label, val))
        pos += hlen
        for _ in range(val):
            pos = cbor_items(b, pos, depth + 1, out, base, "", keys)
        return pos
    if major == 5:
        out.emit(base + pos, b[pos:pos + hlen], "%s%smap(%d)" % (ind, label, val))
        pos += hlen
        for _ in range(val):
            kend, ktxt = scalar(b, pos)
            kname = (keys or {}).get(int(ktxt)) if ktxt.isdigit() else None
            klabel = "%s (%s)" % (kname, ktxt) if kname else "key %s" % ktxt
            sv = scalar(b, kend)
            if sv and sv[0] - pos <= 16:
                out.emit(base + pos, b[pos:sv[0]], "%s  %s = %s" % (ind, klabel, sv[1]))
                pos = sv[0]
            else:
                out.emit(base + pos, b[pos:kend], "%s  %s:" % (ind, klabel))
                pos = cbor_items(b, kend, depth + 2, out, base, "",
                                 STATES if kname == "pages" else None)
        return pos
    if major == 7:
        names = {20: "false", 21: "true", 22: "null"}
        out.emit(base + pos, b[pos:pos + hlen], "%s%s%s" % (ind, label, names.get(ai, "simple")))
        return pos + hlen
    raise SystemExit("unsupported CBOR at %d" % (base + pos))


def main():
    name, path = sys.argv[1], sys.argv[2]
    b = open(path, "rb").read()
    o = Out()
    o.emit(0, b[0:8], "magic")
    o.emit(8, b[8:10], "major = %d" % struct.unpack_from("<H", b, 8))
    o.emit(10, b[10:12], "minor = %d" % struct.unpack_from("<H", b, 10))
    hs = struct.unpack_from("<I", b, 12)[0]
    o.emit(12, b[12:16], "header_size = %d" % hs)
    o.emit(16, b[16:24], "required_features")
    o.emit(24, b[24:32], "optional_features")
    o.emit(32, b[32:36], "page_size = %d" % struct.unpack_from("<I", b, 32))
    o.emit(36, b[36:40], "reserved")
    o.emit(40, b[40:72], 'writer_name = "%s"' % b[40:72].rstrip(b"\0").decode())
    o.emit(72, b[72:104], 'writer_version = "%s"' % b[72:104].rstrip(b"\0").decode())
    o.emit(hs - 8, b[hs - 8:hs], "preamble checksum")
    pos, idx = hs, 0
    while pos < len(b):
        t, fl, ln = struct.unpack_from("<HHI", b, pos)
        tn = TYPES.get(t, "type %d" % t)
        o.lines.append("# record %d: %s" % (idx, tn))
        o.emit(pos, b[pos:pos + 8], "type %d (%s), flags 0x%04x, length %d" % (t, tn, fl, ln))
        o.emit(pos + 8, b[pos + 8:pos + 16], "chained checksum")
        p = pos + 16
        pl = b[p:p + ln]
        if t == 3:
            rid, n, enc = struct.unpack_from("<IIB", pl, 0)
            o.emit(p, pl[0:16], "region %d, %d extents, encoding %d" % (rid, n, enc))
            for k in range(n):
                q = 16 + 24 * k
                first, cnt, st = struct.unpack_from("<QIB", pl, q)
                arg = struct.unpack_from("<Q", pl, q + 16)[0]
                note = "extent: pages %d..%d %s" % (first, first + cnt - 1, STATES.get(st, st))
                if arg:
                    note += ", argument 0x%x" % arg
                o.emit(p + q, pl[q:q + 24], note)
            q = 16 + 24 * n
            if q < ln:
                o.emit(p + q, pl[q:], "page data")
        else:
            cbor_items(pl, 0, 0, o, p, "", KEYS.get(t))
        pos = p + ln
        idx += 1
    print("```hex vector=%s" % name)
    print("\n".join(o.lines))
    print("```")


main()
