#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_libvirt: small libvirt save images.

Usage: make-libvirt-corpus.py OUT_DIR IMAGE QEMU_STREAM...

IMAGE is a real save image (uncompressed, e.g. tests/data/libvirt/
q35-raw.libvirt.zst through zstd -d): its domain XML and cookie are kept,
its padding cut to 64 bytes so that a seed stays small. Each QEMU_STREAM
(QEMU streams that the QEMU module reads, from fuzz/corpus/fuzz_import_qemu)
is wrapped in that header raw and compressed as libvirt's programs do:
gzip, bzip2, xz -3, zstd (the zstd program, which Python lacks). Besides:
the first one with the header written big-endian, without a cookie, under
the incomplete save's magic and as lzop; the first 16 KiB of IMAGE's own
QEMU stream as raw and gzip. Files are named by the SHA-1 of their bytes.
"""
import bz2
import gzip
import hashlib
import lzma
import os
import struct
import subprocess
import sys

MAGIC = b"LibvirtQemudSave"


def header(xml, cookie, fmt, big=False, magic=MAGIC, pad=64):
    data = xml + b"\0"
    cookie_off = 0
    if cookie is not None:
        cookie_off = len(data)
        data += cookie + b"\0"
    data += bytes(pad)
    order = ">" if big else "<"
    h = magic + struct.pack(order + "5I", 2, len(data), 0, fmt, cookie_off) + bytes(56)
    return h + data


def compress(fmt, b):
    if fmt == 0:
        return b
    if fmt == 1:
        return gzip.compress(b, mtime=0)
    if fmt == 2:
        return bz2.compress(b)
    if fmt == 3:
        return lzma.compress(b, preset=3)
    if fmt == 5:
        return subprocess.run(["zstd", "-q", "-c"], input=b, stdout=subprocess.PIPE,
                              check=True).stdout
    raise ValueError(fmt)


def main():
    out, image, streams = sys.argv[1], sys.argv[2], sys.argv[3:]
    img = open(image, "rb").read()
    assert img[:16] == MAGIC
    _, data_len, _, fmt, cookie_off = struct.unpack_from("<5I", img, 16)
    assert fmt == 0
    data = img[92:92 + data_len]
    xml = data[:data.index(b"\0")]
    cookie = data[cookie_off:data.index(b"\0", cookie_off)] if cookie_off else None
    own = img[92 + data_len:92 + data_len + 16384]

    seeds = []
    for i, path in enumerate(streams):
        q = open(path, "rb").read()
        for f in (0, 1, 2, 3, 5):
            seeds.append(header(xml, cookie, f) + compress(f, q))
        if i == 0:
            seeds.append(header(xml, cookie, 0, big=True) + q)
            seeds.append(header(xml, None, 1) + compress(1, q))
            seeds.append(header(xml, cookie, 0, magic=b"LibvirtQemudPart") + q)
            seeds.append(header(xml, cookie, 4) + q)
    seeds.append(header(xml, cookie, 0) + own)
    seeds.append(header(xml, cookie, 1) + compress(1, own))

    os.makedirs(out, exist_ok=True)
    for s in seeds:
        with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print("%d seeds in %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
