#!/usr/bin/env python3
"""Xen's stream checker with its Python 3 bug fixed, for the tests.

usage: verify.py libxl|libxc STREAM

Runs the checks of Xen 4.17's verify-stream-v2 (its xen.migration module,
from xen-utils-4.17: /usr/lib/xen-4.17/lib/python, or MS_XEN_PYTHON) on
STREAM, with one change: under Python 3 its check of EMULATOR_XENSTORE_DATA
compares a byte (an int) with the string "\\0", so it refuses every such
record that holds data ("Data not NUL terminated"). The check below is the
same one on bytes. Everything else is Xen's code, unchanged.

Exit status: 0 the stream passes, 1 it does not (the checker's error on
standard error), 77 the module is not installed.
"""
import os
import struct
import sys
import traceback

sys.path.insert(0, os.environ.get("MS_XEN_PYTHON", "/usr/lib/xen-4.17/lib/python"))
try:
    from xen.migration import libxc, libxl
    from xen.migration.verify import RecordError, StreamError
except ImportError:
    print("xen.migration is not installed (Debian: xen-utils-4.17)", file=sys.stderr)
    sys.exit(77)


def xenstore_data(self, content):
    """EMULATOR_XENSTORE_DATA, as libxl.py checks it, on bytes."""
    minsz = struct.calcsize(libxl.EMULATOR_HEADER_FORMAT)
    if len(content) < minsz:
        raise RecordError("Length must be at least %d bytes, got %d" % (minsz, len(content)))
    emu_id, _ = struct.unpack(libxl.EMULATOR_HEADER_FORMAT, content[:minsz])
    if emu_id not in libxl.emulator_id_to_str:
        raise RecordError("Unrecognised emulator id 0x%x" % (emu_id, ))
    content = content[minsz:]
    if len(content):
        if content[-1:] != b"\x00":
            raise RecordError("Data not NUL terminated")
        parts = content[:-1].split(b"\x00")
        if len(parts) % 2 != 0:
            raise RecordError("Expected an even number of strings, got %d" % (len(parts), ))


libxl.record_verifiers[libxl.REC_TYPE_emulator_xenstore_data] = xenstore_data


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        def info(_msg):
            pass
        try:
            if fmt == "libxl":
                libxl.VerifyLibxl(info, f.read).verify()
            else:
                libxc.VerifyLibxc(info, f.read).verify()
        except (IOError, StreamError, RecordError, DeprecationWarning):
            traceback.print_exc()
            return 1
        if f.read(1):
            print("bytes follow the END record", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
