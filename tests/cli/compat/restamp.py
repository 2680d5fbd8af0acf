#!/usr/bin/env python3
"""Rewrites a libmigstream stream's preamble: its format minor version and
its required feature bits, then recomputes the preamble checksum and the
record checksum chain (docs/FORMAT.md sections 3.1 and 4.2) so that the
stream stays valid. A stream may set a feature bit it does not use (section
3.2), so any stream can be given any bit the library implements.

    restamp.py IN OUT [--minor N] [--features MASK]
"""
import ctypes
import struct
import sys

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed):
    return _xxh.XXH3_64bits_withSeed(bytes(data), len(data), seed)


def main(argv):
    src, dst, opts = argv[1], argv[2], argv[3:]
    b = bytearray(open(src, "rb").read())
    while opts:
        name, value = opts[0], int(opts[1], 0)
        if name == "--minor":
            struct.pack_into("<H", b, 10, value)
        elif name == "--features":
            struct.pack_into("<Q", b, 16, value)
        else:
            sys.exit("restamp.py: unknown option " + name)
        opts = opts[2:]
    hsize = struct.unpack_from("<I", b, 12)[0]
    seed = xxh3(b[: hsize - 8], 0)
    struct.pack_into("<Q", b, hsize - 8, seed)
    pos = hsize
    while pos < len(b):
        length = struct.unpack_from("<I", b, pos + 4)[0]
        seed = xxh3(b[pos : pos + 8] + b[pos + 16 : pos + 16 + length], seed)
        struct.pack_into("<Q", b, pos + 8, seed)
        pos += 16 + length
    open(dst, "wb").write(b)


main(sys.argv)
