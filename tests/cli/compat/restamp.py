#!/usr/bin/env python3
"""Rewrites a libmigstream stream's preamble: its format minor version and
its required feature bits, then recomputes the preamble checksum and the
record checksum chain (docs/FORMAT.md sections 3.1 and 4.2) so that the
stream stays valid. A stream may set a feature bit it does not use (section
3.2), so any stream can be given any bit the library implements.

    restamp.py IN OUT [--minor N] [--features MASK]
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pylib"))
from msstream import rechain  # noqa: E402


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
    open(dst, "wb").write(rechain(b))


main(sys.argv)
