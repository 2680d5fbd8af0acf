#!/usr/bin/env python3
"""Generators of hostile inputs, one per class of docs/SECURITY.md's cost
model ("Cost"): small inputs that made a tool do work, take memory or
write bytes out of proportion to their size. Each takes a size parameter
@n (about the input's size in bytes, unless its comment says otherwise)
so that run.py can compare a tool's cost on sizes n and k*n.

    gen.py CLASS N OUT      writes the input of class CLASS, size N, to OUT

Streams are written byte by byte from docs/FORMAT.md (tests/pylib), QEMU
streams from docs/QEMU.md.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from msstream import DATA, F_FILL, FILL, MUST, PAGES, ZERO, Stream, cbor, region  # noqa: E402

CP = 4096  # pages per chunk of a page-state map (libmigstream/state/region_map.h)
REGION_PAGES = 1 << 31  # 8 TiB of 4 KiB pages: a sparse image ext4 can hold


def pm_runs(n):
    """Page-state maps: N chunks with an entry, then M records each with one
    long ZERO run over the same pages, beyond them. A map that scans its
    table for every long run costs N * M. (N stays below 2^17: the region
    holds 2^19 chunks.)"""
    s = Stream("resources", "1")
    s.regions(region(0, "ram", 0, REGION_PAGES * 4096, 4096))
    chunks, runs = min(n // 48, 1 << 17), n // 56
    ext = [(c * CP, CP, ZERO, 0) for c in range(chunks)]
    for i in range(0, chunks, 2000):
        s.pages_rec(0, ext[i:i + 2000])
    far = (1 << 18) * CP
    length = min(REGION_PAGES - far, 4 * chunks * CP)
    for _ in range(runs):
        s.pages_rec(0, [(far, length, ZERO, 0)])
    return s.end()


def pm_spans(n):
    """Page-state maps: M long ZERO runs over distinct pages, each in its own
    record, from the top of a 64 PiB region down: a sorted array of spans
    moves its whole tail for each."""
    s = Stream("resources", "1")
    pages = 1 << 44
    s.regions(region(0, "ram", 0, pages * 4096, 4096))
    runs = n // 56
    for m in range(runs):
        s.pages_rec(0, [((runs - m) * 16 * CP, 16 * CP, ZERO, 0)])
    return s.end()


def fill_huge(n):
    """FILL: one extent of 2^31 pages (8 TiB) in an 8 TiB region, after a
    DATA page: 109 bytes of stream describe 8 TiB of contents. (@n is not
    used: the input has one size.)"""
    s = Stream("resources", "1", minor=1, required=F_FILL)
    s.regions(region(0, "ram", 0, REGION_PAGES * 4096, 4096))
    s.pages_rec(0, [(0, 1, DATA, 0)], b"\x5a" * 4096)
    s.pages_rec(0, [(1, REGION_PAGES - 1, FILL, 0x0123456789abcdef)])
    return s.end()


def fill_repeat(n):
    """FILL: one run of 4096 pages (16 MiB) sent again and again, each time
    with another word: written once, the run is 16 MiB however often it
    comes; written each time, n / 56 times that."""
    s = Stream("resources", "1", minor=1, required=F_FILL)
    s.regions(region(0, "ram", 0, 1 << 30, 4096))
    for i in range(n // 56):
        s.pages_rec(0, [(4096, 4096, FILL, 0x0101010101010101 * (1 + i % 255))])
    return s.end()


def zstd_rle_frame(size):
    """A zstd frame (RFC 8878) of RLE blocks, @size zero bytes: 4 bytes per
    128 KiB of content."""
    f = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", size)  # single segment, FCS 8
    left = size
    while left:
        n = min(left, 128 << 10)
        left -= n
        f += struct.pack("<I", (n << 3) | (1 << 1) | (left == 0))[:3] + b"\0"
    return f


def zstd_amp(n):
    """zstd: PAGES records of 16383 DATA pages whose data section is a
    2 KiB frame decoding to 64 MiB, each about 2 KiB of stream: the
    decoding work is 30000 times the input unless it is bounded."""
    s = Stream("resources", "1")
    pages = 16383
    s.regions(region(0, "ram", 0, pages * 4096, 4096))
    frame = zstd_rle_frame(pages * 4096)
    head = struct.pack("<IIB7x", 0, 1, 1) + struct.pack("<QIB3xQ", 0, pages, DATA, 0)
    for _ in range(max(1, n // (len(head) + len(frame) + 24))):
        s.record(PAGES, MUST, head + frame)
        s.pages[DATA] = s.pages.get(DATA, 0) + pages
    return s.end()


def compat_fields(n):
    """Schemas learned from streams (migstream-compat): one DEVICE whose
    state is a map of n / 8 distinct keys: each key looked up among all
    fields before it is quadratic."""
    s = Stream("resources", "1")
    count = max(1, min(n // 8, 1 << 20))
    state = bytearray(b"\xba" + struct.pack(">I", count))
    for i in range(count):
        state += b"\x66k%05x\x00" % i
    s.device("dev", 0, "dev", 1, bytes(state))
    return s.end()


def schema_cbor_arrays(n):
    """A CBOR schema file: {"schemas": [[], [], ...]}, n empty arrays of one
    byte each, each 3 bytes and a parsed JSON value once turned into JSON
    text: refused before parsing past the values max_fields allows."""
    return b"\xa1\x67schemas\x9a" + struct.pack(">I", n) + b"\x80" * n


def json_values(n):
    """migstream-pack: a device state as JSON, an array of n / 3 empty
    arrays: every 3 bytes a value that jansson takes tens of bytes for.
    Refused before it is parsed past the values the tool reads. Padded
    with spaces to a multiple of 4096 bytes, so that it serves as the
    region's image of the command too."""
    j = b"[" + b",".join([b"[]"] * max(1, n // 3)) + b"]"
    return j + b" " * (-len(j) % 4096)


def devices_many(n):
    """Device states: DEVICE records of one path, each a new instance, in
    descending order, each state 64 bytes: a sorted array moves its whole
    tail for each; kept without a limit, memory follows the input."""
    s = Stream("resources", "1")
    count = n // 110
    state = cbor(b"\x5a" * 64)
    for i in range(count):
        s.device("dev", count - i, "dev", 1, state)
    return s.end()


# ------------------------------------------------------------------ QEMU

PS = 4096  # QEMU's target page size in the streams below


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def name8(s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


class Qemu:
    """A QEMU migration stream (docs/QEMU.md section 1): the file header,
    CONFIGURATION, the "ram" section (id 1) with its MEM_SIZE table, then
    what the caller adds, and finish() with EOF and the JSON trailer."""

    def __init__(self, blocks=(("pc.ram", 4 * PS),)):
        self.out = bytearray(be32(0x5145564D) + be32(3))
        self.out += b"\x07" + be32(6) + b"pc-7.2"
        self.out += b"\x01" + be32(1) + name8("ram") + be32(0) + be32(4)
        self.out += be64(sum(n for _, n in blocks) | 0x04)
        for name, length in blocks:
            self.out += name8(name) + be64(length)

    def zero(self, addr, block=None):
        """A ZERO item: of @block, or CONTINUE with the last one named."""
        self.out += be64(addr | (0x02 if block else 0x22))
        if block:
            self.out += name8(block)
        self.out += b"\0"

    def end_ram(self):
        self.out += be64(0x10) + b"\x7e" + be32(1)

    def full(self, sid, idstr, data, instance=0, version=1):
        self.out += b"\x04" + be32(sid) + name8(idstr) + be32(instance) + be32(version)
        self.out += data + b"\x7e" + be32(sid)

    def finish(self, trailer=None):
        self.out += b"\0"
        if trailer is not None:
            t = trailer.encode() if isinstance(trailer, str) else trailer
            self.out += b"\x06" + be32(len(t)) + t
        return bytes(self.out)


def qemu_vmsd_expand(n):
    """QEMU importer: a device section of S bytes that the trailer describes
    as S one-byte structs, each with Z fields of no size besides its byte:
    the fields are expanded S * Z times unless the work is bounded by the
    section's bytes."""
    q = Qemu()
    q.end_ram()
    size = n // 2
    zero = max(1, n // 2 // 24)
    fields = ['{"name":"b","type":"uint8","size":1}']
    fields += ['{"name":"z%x","size":0}' % i for i in range(zero)]
    q.full(2, "dev", b"\x01" * size)
    trailer = ('{"page_size":4096,"devices":[{"name":"dev","instance_id":0,"vmsd_name":"dev",'
               '"version":1,"fields":[{"name":"a","array_len":%d,"size":1,"type":"struct",'
               '"struct":{"vmsd_name":"s","version":1,"fields":[%s]}}]}]}'
               % (size, ",".join(fields)))
    return q.finish(trailer)


def qemu_zero_pass(n):
    """QEMU importer: ZERO items that touch one page in each 2^15-page
    chunk of a 16 TiB block, then the same page again and again: each
    repeat starts a pass, which cleared the whole 64 MiB bitmap."""
    q = Qemu(blocks=(("pc.ram", 1 << 44),))
    chunks = min(n // 18, 16000)
    q.zero(0, "pc.ram")
    for c in range(1, chunks):
        q.zero(c << (15 + 12))
    for _ in range(n // 18):
        q.zero(0)
    q.end_ram()
    return q.finish()


def qemu_sections(n):
    """QEMU importer: many FULL sections with distinct ids (each looked up
    among all before it), then one whose bytes hold many candidate
    footers, each naming a section id to look up."""
    q = Qemu()
    q.end_ram()
    count = min(n // 2 // 22, 60000)
    for i in range(count):
        q.full(10 + i, "dev", b"")
    last = 10 + count
    # 0x7e, the section's own id, then a START of the first section's id
    # under another name: a footer candidate refused after a lookup.
    fake = b"\x7e" + be32(last) + b"\x01" + be32(10) + name8("other") + be32(0) + be32(0)
    q.full(last, "big", fake * (n // 2 // len(fake)))
    return q.finish()


def qemu_trailer_dup(n):
    """QEMU importer: N sections "dev" instance 0 and a trailer describing
    "dev" instance 0 N times: each section takes the next description not
    used yet, found by a scan from the first."""
    q = Qemu()
    q.end_ram()
    count = n // 100
    for i in range(count):
        q.full(10 + i, "dev", b"")
    desc = '{"name":"dev","instance_id":0,"vmsd_name":"dev","version":1,"fields":[]}'
    return q.finish('{"page_size":4096,"devices":[%s]}' % ",".join([desc] * count))


def qemu_trailer_big(n):
    """QEMU importer: one description of many fields without bytes, and
    many sections it describes: each section walked the whole description
    again, to check and to decode it."""
    q = Qemu()
    q.end_ram()
    count = n // 2 // 22
    for i in range(count):
        q.full(10 + i, "dev", b"")
    fields = ",".join('{"name":"z%x","size":0}' % i for i in range(n // 2 // 24))
    return q.finish('{"page_size":4096,"devices":[{"name":"dev","instance_id":0,'
                    '"vmsd_name":"dev","version":1,"fields":[%s]}]}' % fields)


def qemu_trailer_empty(n):
    """QEMU importer: a trailer of n bytes, nearly all empty objects, the
    JSON that takes the most memory per byte once parsed."""
    q = Qemu()
    q.end_ram()
    count = max(1, (n - 40) // 3)
    return q.finish('{"page_size":4096,"devices":[%s]}' % ",".join(["{}"] * count))


def qemu_blocks(n):
    """QEMU importer: 1024 RAM blocks, then ZERO items each naming the last
    block by name: a lookup per item among all blocks (a scan costs 1024
    comparisons an item; declaring more blocks only slows the baseline)."""
    blocks = [("b%04d" % i, PS) for i in range(1024)]
    q = Qemu(blocks=blocks)
    for _ in range(n // 15):
        q.zero(0, "b1023")
    q.end_ram()
    return q.finish()


def qemu_multifd_zip(n, page_bits=12):
    """QEMU importer: a multifd migration whose one channel (written to
    OUT.chan0) carries packets of every normal page a packet holds (512
    KiB), each compressed with zstd to 16 bytes of RLE blocks: about 1.4 KB
    of channel per 512 KiB decoded with 4 KiB pages, 400 bytes with 64 KiB
    pages (@page_bits 16). The pages are all 0x5a, so that --dedup writes
    each but the first as a reference: the decoding is the work."""
    ps = 1 << page_bits
    count = (512 << 10) // ps
    q = Qemu(blocks=(("pc.ram", count * ps),))
    if page_bits != 12:
        # CONFIGURATION's subsection configuration/target-page-bits.
        cfg = b"\x07" + be32(6) + b"pc-7.2"
        at = bytes(q.out).index(cfg) + len(cfg)
        q.out[at:at] = b"\x05" + name8("configuration/target-page-bits") + be32(1) + \
            be32(page_bits)
    q.end_ram()
    main = q.finish()
    chan = bytearray(be32(0x11223344) + be32(1) + bytes(56))
    rle = b"\x02\x00\x10\x5a" * 4  # four 128 KiB RLE blocks, none the last
    packet = 320 + 8 * count + len(rle)
    packets = max(1, n // packet)
    for k in range(packets):
        data = (b"\x28\xb5\x2f\xfd\x00\x38" if k == 0 else b"") + rle
        flags = 0x04 | (0x01 if k + 1 == packets else 0)
        chan += be32(0x11223344) + be32(1) + be32(flags) + be32(count) + be32(count)
        chan += be32(len(data)) + be64(k) + bytes(32) + b"pc.ram".ljust(256, b"\0")
        chan += b"".join(be64(i * ps) for i in range(count)) + data
    return {"": main, ".chan0": bytes(chan)}


GENERATORS = {
    "pm-runs": pm_runs,
    "pm-spans": pm_spans,
    "fill-huge": fill_huge,
    "fill-repeat": fill_repeat,
    "devices-many": devices_many,
    "compat-fields": compat_fields,
    "json-values": json_values,
    "schema-cbor-arrays": schema_cbor_arrays,
    "zstd-amp": zstd_amp,
    "qemu-vmsd-expand": qemu_vmsd_expand,
    "qemu-zero-pass": qemu_zero_pass,
    "qemu-sections": qemu_sections,
    "qemu-trailer-dup": qemu_trailer_dup,
    "qemu-trailer-big": qemu_trailer_big,
    "qemu-trailer-empty": qemu_trailer_empty,
    "qemu-blocks": qemu_blocks,
    "qemu-multifd-zstd": qemu_multifd_zip,
    "qemu-multifd-zstd-64k": lambda n: qemu_multifd_zip(n, 16),
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in GENERATORS:
        sys.exit("usage: gen.py CLASS N OUT\nclasses: " + " ".join(sorted(GENERATORS)))
    data = GENERATORS[sys.argv[1]](int(sys.argv[2]))
    # A class of several files (a QEMU main stream and its channels) gives
    # each file's suffix to OUT.
    for suffix, part in (data if isinstance(data, dict) else {"": data}).items():
        with open(sys.argv[3] + suffix, "wb") as f:
            f.write(part)


if __name__ == "__main__":
    main()
