#!/usr/bin/env python3
"""Extracts the memory of a VM migration stream, one file per RAM block, as
QEMU's scripts/analyze-migration.py -x does, plus the devices' state.

    extract.py [-o DIR] STREAM [CHANNEL...]

STREAM is any stream the migstream package reads: a QEMU migration stream
(precopy, XBZRLE, compressed pages, multifd with its channel captures given
after it in any order, mapped-ram), a libvirt save image, or a libmigstream
stream. Each RAM block
becomes DIR/NAME, NAME the block's name ("pc.ram", "0000:00:02.0/vga.vram",
"/rom@etc/acpi/tables" as rom@etc/acpi/tables), exactly the block's size,
sparse where pages are zero; DIR/state.json holds each device's last state.

Every page takes its last copy in the stream, whatever its kind: a page
sent as data in one pass and as a zero page in a later one is zero, an
XBZRLE page is decoded against its previous copy, a page that travelled
over a multifd channel lands with the others. The stream is read record by
record, in bounded memory, and checked as it goes: a damaged or truncated
stream stops the extraction with the byte offset of the damage.
"""

import argparse
import json
import os
import sys

import migstream
from migstream import PageState

CHUNK = 4096  # pages per entry of the map of pages written with data
ZEROS = bytes(1 << 20)


def file_name(block):
    """A relative path for a block name from the stream, which is untrusted:
    no absolute path, no "." or ".." component, no empty one."""
    parts = []
    for p in block.replace("%", "%25").split("/"):
        if p in ("", "."):
            continue
        parts.append("%2E%2E" if p == ".." else p)
    return os.path.join(*parts) if parts else "%2F"


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def write_zeros(fd, offset, length):
    while length:
        n = min(length, len(ZEROS))
        pwrite_all(fd, ZEROS[:n], offset)
        offset += n
        length -= n


class Block:
    """One RAM block's file and which of its pages hold written bytes, so
    that a later zero copy of such a page overwrites them (QEMU sends zero
    pages again in later passes); pages never written are holes already."""

    def __init__(self, path, region):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(self.fd, region.size)
        self.ps = region.page_size
        self.written = {}  # chunk index -> bytearray(CHUNK): 1 where bytes were written

    def mark(self, first, count, value):
        end = first + count
        while first < end:
            c, i = divmod(first, CHUNK)
            n = min(end - first, CHUNK - i)
            flags = self.written.get(c)
            if flags is None and value:
                flags = self.written[c] = bytearray(CHUNK)
            if flags is not None:
                flags[i:i + n] = (b"\1" if value else b"\0") * n
            first += n

    def data(self, first, data):
        pwrite_all(self.fd, data, first * self.ps)
        self.mark(first, len(data) // self.ps, True)

    def zero(self, first, count):
        end = first + count
        c = first // CHUNK
        while c * CHUNK < end:
            flags = self.written.get(c)
            if flags is not None:
                lo, hi = max(first, c * CHUNK) - c * CHUNK, min(end, (c + 1) * CHUNK) - c * CHUNK
                i = flags.find(1, lo, hi)
                while i >= 0:
                    j = flags.find(0, i, hi)
                    j = hi if j < 0 else j
                    write_zeros(self.fd, (c * CHUNK + i) * self.ps, (j - i) * self.ps)
                    flags[i:j] = bytes(j - i)
                    i = flags.find(1, j, hi)
            c += 1

    def close(self):
        os.close(self.fd)


def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v


def extract(inputs, outdir, quiet=False):
    """Writes each block of the stream of @inputs under @outdir and returns
    {block name: file path}."""
    os.makedirs(outdir, exist_ok=True)
    blocks, paths, devices = {}, {}, {}
    try:
        with migstream.open(inputs) as r:
            for rec in r:
                if isinstance(rec, migstream.Regions):
                    for g in rec.regions:
                        path = os.path.join(outdir, file_name(g.name))
                        blocks[g.id] = Block(path, g)
                        paths[g.name] = path
                        if not quiet:
                            print(path)
                elif isinstance(rec, migstream.Pages):
                    b = blocks[rec.region.id]
                    for x, data in rec.iter_extents():
                        if data is not None:  # DATA: a view of the reader's buffer
                            b.data(x.first, data)
                        elif x.state == PageState.FILL:  # one 8-byte word, repeated
                            page = x.arg.to_bytes(8, "little") * (b.ps // 8)
                            for first in range(x.first, x.first + x.count, 256):
                                n = min(256, x.first + x.count - first)
                                b.data(first, page * n)
                        elif x.state in (PageState.ZERO, PageState.DISCARDED):
                            b.zero(x.first, x.count)
                        else:
                            raise SystemExit(f"{rec.region.name}: pages {x.first}.. are "
                                             "IN_PLACE: their bytes are not in the stream")
                elif isinstance(rec, migstream.Device):
                    devices[f"{rec.path}/{rec.instance}"] = {
                        "schema": rec.schema, "version": rec.version,
                        "state": jsonable(rec.state)}
            r.expect_eof()
    finally:
        for b in blocks.values():
            b.close()
    with open(os.path.join(outdir, "state.json"), "w") as f:
        json.dump(devices, f, indent=1, sort_keys=True)
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=".", help="directory of the files (default .)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not list the files")
    p.add_argument("stream", nargs="+", help="the stream, then its channels, if any")
    a = p.parse_args()
    try:
        extract(a.stream, a.output, a.quiet)
    except migstream.Error as e:  # the message says where: byte offset, record
        print(f"extract.py: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"extract.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
