"""migstream: VM migration streams from Python, over the libmigstream C library.

Read a stream of any format the library reads (its own; QEMU's migration
stream, multifd channels and mapped-ram included), record by record:

    import migstream

    with migstream.open(["vm.qemu", "vm.qemu.chan0", "vm.qemu.chan1"]) as r:
        for rec in r:
            if isinstance(rec, migstream.Pages):
                for extent, data in rec.iter_extents():
                    ...           # data: a memoryview of DATA pages, no copy
            elif isinstance(rec, migstream.Device):
                print(rec.path, rec.state)   # device state as Python values

write one:

    with migstream.Writer("vm.mig", writer_name="myvmm") as w:
        w.add_region(0, "pc.ram", len(ram), gpa=0)
        w.pages(0, 0, ram)                   # bytes, mmap, numpy: not copied
        w.device("cpu/0", 0, "x86-cpu", 1, {"rip": 0xfff0})

or apply one with the library's engines: final_state() (each region's final
memory as an mmap), replay_to_dir(), replay() and diff(). Failures raise
migstream.Error subclasses carrying .status, .message, .offset and .record.
docs/PYTHON.md is the manual.
"""

from __future__ import annotations

from typing import Any, Tuple

from . import _migstream
from ._engines import (DeviceState, DiffKind, DiffResult, DiffTotals, Difference, FinalState,
                       ReplayResult, diff, final_state, region_image, replay, replay_to_dir)
from ._migstream import (CborError, ChecksumError, CompressionError, CorruptError, Error,
                         FeatureError, InvalidArgumentError, IoError, LimitError,
                         NotAStreamError, OutOfMemoryError, StateError, TruncatedError,
                         UnknownRecordError, VersionError, WouldBlockError)
from ._reader import Inputs, Reader, Source, open
from ._types import (MUST_UNDERSTAND, Device, End, Extent, Extents, Feature, Header, Info,
                     Overlay, OverlayKind, Overlays, Pages, PageState, Part, PartInfo, Problem,
                     RawRecord,
                     Record, RecordType, Region, Regions, Round, Totals, Tracker)
from ._writer import Target, Writer

__version__: str = _migstream.version
"""The version of the C library the package runs on."""

FORMAT_VERSION: Tuple[int, int] = (_migstream.FORMAT_MAJOR, _migstream.FORMAT_MINOR)
"""The newest stream format version the library reads and writes. A stream
is stamped with the lowest version that defines what it uses (FORMAT.md
section 11.2): 1.1 for a stream in one piece, 1.2 only for a part of a
migration in parts."""


def formats() -> Tuple[str, ...]:
    """The formats this build reads: "migstream", then the modules' ("qemu")."""
    return _migstream.formats()


def cbor_encode(value: Any, max_depth: int = _migstream.DEFAULT_CBOR_DEPTH) -> bytes:
    """Encodes Python values as one CBOR item of the device-state profile
    (FORMAT.md section 10), deterministically: the shortest integers,
    lengths and floats that keep the value, map keys sorted by their
    encoded bytes. None, bool, int (-2**64 .. 2**64 - 1), float, str,
    bytes-like (a byte string), list and tuple (arrays), dict (maps)."""
    return _migstream.cbor_encode(value, max_depth)


def cbor_decode(data: Any, max_depth: int = _migstream.DEFAULT_CBOR_DEPTH) -> Any:
    """Decodes exactly one CBOR item of the profile: definite lengths, no
    tags, false/true/null and floats as simple values, UTF-8 text, nesting
    at most max_depth arrays and maps. Arrays used as map keys become
    tuples. Raises CborError (with .offset in the item) on anything else,
    and on a map key Python cannot hold (a map; a key twice)."""
    return _migstream.cbor_decode(data, max_depth)


def new_migration_id() -> bytes:
    """16 random bytes naming one migration in parts: pass the same to the
    Writer of every part (part=(id, index, count))."""
    return _migstream.migration_id()


def strerror(status: int) -> str:
    """The library's name of a status ("MS_ECHECKSUM: ...")."""
    return _migstream.strerror(status)


__all__ = [
    # reading
    "open", "Reader", "Inputs", "Source", "Header", "Region", "Extent", "Extents", "Overlay",
    "Totals", "Problem", "Record", "Info", "Regions", "Pages", "Device", "Round", "Overlays",
    "End", "Part", "PartInfo", "RawRecord",
    # writing
    "Writer", "Target", "new_migration_id",
    # engines
    "replay", "replay_to_dir", "ReplayResult", "final_state", "FinalState", "region_image",
    "DeviceState", "diff", "DiffResult", "Difference", "DiffKind", "DiffTotals",
    # values
    "RecordType", "PageState", "Feature", "Tracker", "OverlayKind", "MUST_UNDERSTAND",
    "FORMAT_VERSION", "formats", "cbor_encode", "cbor_decode", "strerror",
    # errors
    "Error", "OutOfMemoryError", "InvalidArgumentError", "IoError", "TruncatedError",
    "NotAStreamError", "VersionError", "FeatureError", "ChecksumError", "CorruptError",
    "UnknownRecordError", "LimitError", "StateError", "CborError", "CompressionError",
    "WouldBlockError",
]
