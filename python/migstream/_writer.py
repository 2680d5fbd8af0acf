"""Writing a stream: migstream.Writer."""

from __future__ import annotations

import os
from typing import IO, Any, Callable, Optional, Sequence, Tuple, Union

from . import _migstream
from ._types import Overlay, Region, Totals, Tracker

Target = Union[str, "os.PathLike[str]", int, IO[bytes], Callable[[memoryview], Any]]
"""Where a Writer writes: a path (created or truncated, closed with the
writer), a file descriptor (the caller's, not closed), a binary file object
(its write() is called until each buffer is taken) or a callable (called
with each buffer). Buffers are memoryviews valid during the call only."""

_MISSING = object()


def _rid(region: Union[int, Region]) -> int:
    return region.id if isinstance(region, Region) else region


class Writer:
    """Writes a stream: regions, pages, device state, rounds, overlays, then
    END (finish()). Each call maps to one ms_writer_* function of the C
    library (include/migstream/writer.h), which says what it checks.

    Page memory is any C-contiguous object with the buffer protocol (bytes,
    bytearray, mmap, numpy arrays): it is not copied here. The library finds
    zero pages (and with Feature.FILL, pages of one repeated word) and copies
    each data page once into its buffer so that memory a running guest
    changes meanwhile still gives consistent records, unless stable_memory
    is set: then, uncompressed, the pages go to the output as they are
    (zero-copy), and the memory must not change during the call.

    Errors are sticky: after a call fails (raising a migstream.Error
    subclass with the library's message), every later call raises the same.
    As a context manager the writer finishes on a clean exit, and on an
    exception closes without END, leaving a truncated stream that readers
    refuse. The GIL is released while the library works."""

    def __init__(self, target: Target, *, writer_name: Optional[str] = None,
                 writer_version: Optional[str] = None, page_size: int = 0,
                 machine: Optional[str] = None, description: Optional[str] = None,
                 batch_bytes: int = 0, compress_level: int = 0, max_cbor_depth: int = 0,
                 features: int = 0, threads: int = 0, stable_memory: bool = False,
                 part: Optional[Tuple[bytes, int, int]] = None) -> None:
        """Options as in ms_writer_options (0 or None: the default):
        writer_name and writer_version (at most 32 bytes each), the base
        page_size (4096), INFO's machine and description, batch_bytes (the
        page data of a PAGES record, 1 MiB), compress_level (zstd, 0: raw),
        max_cbor_depth of device state (64), the required features the
        stream may use (Feature flags), compression threads, and
        stable_memory (see the class). part=(migration_id, index, count)
        makes the stream one part of a migration in parts (FORMAT.md
        section 2.1; migration_id from migstream.new_migration_id(), the
        same for every part): the writer sets Feature.PARTS, stamps format
        1.2 and writes the PART record first; the caller keeps the parts
        consistent as ms_writer_options.part (writer.h) says."""
        self._w = _migstream.Writer(
            target, writer_name=writer_name, writer_version=writer_version,
            page_size=page_size, machine=machine, description=description,
            batch_bytes=batch_bytes, compress_level=compress_level,
            max_cbor_depth=max_cbor_depth, features=int(features), threads=threads,
            stable_memory=stable_memory, part=part)
        self._depth = max_cbor_depth or _migstream.DEFAULT_CBOR_DEPTH
        self.totals: Optional[Totals] = None
        """The totals written in END, once finish() returned."""

    def add_region(self, id: Union[int, Region], name: Optional[str] = None, size: int = 0,
                   *, page_size: int = 4096, gpa: Optional[int] = None) -> Region:
        """Declares a region (written in a REGIONS record before the next
        pages): add_region(0, "pc.ram", 1 << 30, gpa=0), or a Region."""
        if isinstance(id, Region):
            region = id
        else:
            if name is None:
                raise TypeError("add_region() needs a name")
            region = Region(id, name, size, page_size, gpa)
        self._w.add_region(region.id, region.name, region.size, region.page_size, region.gpa)
        return region

    def pages(self, region: Union[int, Region], first: int, memory: Any) -> None:
        """Writes the pages of @memory (a buffer of whole pages) from page
        @first of @region: zero pages as ZERO runs, the rest as DATA (FILL
        with Feature.FILL). A later copy of a page replaces an earlier one."""
        self._w.pages(_rid(region), first, memory)

    def pagesv(self, region: Union[int, Region], first: int, buffers: Sequence[Any]) -> None:
        """Same, the pages gathered from several buffers in order."""
        self._w.pagesv(_rid(region), first, buffers)

    def zero_pages(self, region: Union[int, Region], first: int, count: int) -> None:
        """Marks @count pages ZERO without reading memory."""
        self._w.zero_pages(_rid(region), first, count)

    def fill_pages(self, region: Union[int, Region], first: int, count: int, word: int) -> None:
        """Marks @count pages as the 8-byte @word repeated (little-endian);
        word 0 writes ZERO pages. Needs Feature.FILL for another word."""
        self._w.fill_pages(_rid(region), first, count, word)

    def discard(self, region: Union[int, Region], first: int, count: int) -> None:
        """Marks @count pages DISCARDED (the guest hinted them free). Needs
        Feature.DISCARDED."""
        self._w.discard(_rid(region), first, count)

    def in_place(self, region: Union[int, Region], first: int, count: int, ref: int) -> None:
        """Marks @count pages IN_PLACE at byte address @ref of the in-place
        space (and the following pages after it). Needs Feature.IN_PLACE."""
        self._w.in_place(_rid(region), first, count, ref)

    def dirty(self, region: Union[int, Region], bitmap: Any, granularity: int,
              memory: Any) -> None:
        """Writes the pages of @region that @bitmap marks dirty (KVM's
        layout: 64-bit words, bit i covers bytes i * granularity onwards),
        read from @memory, the whole region."""
        self._w.dirty(_rid(region), bitmap, granularity, memory)

    def round(self, number: int, *, tracker: int = Tracker.NONE, granularity: int = 0,
              dirty: Optional[int] = None, final: bool = False) -> None:
        """Starts pre-copy round @number (FORMAT.md section 6.4): the pages
        written after it belong to it. In a stream with rounds, start round
        0 before the first pages."""
        self._w.round(number, int(tracker), granularity, dirty, final)

    def overlay(self, overlay: Optional[Overlay] = None, /, **kw: Any) -> None:
        """Writes one hypervisor overlay: an Overlay, or its arguments
        (gfn=, kind=, and the kind's parameters). Needs Feature.OVERLAYS."""
        if overlay is None:
            gfn = kw.pop("gfn")
            kind = kw.pop("kind")
            overlay = Overlay(gfn, kind, **kw)
        elif kw:
            raise TypeError("overlay() takes an Overlay or keyword arguments, not both")
        self._w.overlay(overlay._tuple())

    def device(self, path: str, instance: int, schema: str, version: int,
               state: Any = _MISSING, *, cbor: Optional[bytes] = None) -> None:
        """Writes one device's state: @state as Python values (None, bool,
        int, float, str, bytes, list, tuple, dict), encoded as one
        deterministic CBOR item (cbor_encode()); or, with cbor=, an item
        encoded already, which the library checks against the profile."""
        if cbor is None:
            if state is _MISSING:
                raise TypeError("device() needs a state or cbor=")
            cbor = _migstream.cbor_encode(state, self._depth)
        elif state is not _MISSING:
            raise TypeError("device() takes a state or cbor=, not both")
        self._w.device(path, instance, schema, version, cbor)

    def record(self, type: int, payload: Any = b"", *, flags: int = 0) -> None:
        """Writes a record of a type this library does not define (a
        private-use type, 0x8000 to 0xffff), skipped by readers unless flags
        has MUST_UNDERSTAND."""
        self._w.record(type, flags, payload)

    def flush(self) -> None:
        """Writes queued pages and pushes buffered bytes to the output."""
        self._w.flush()

    def finish(self) -> Totals:
        """Writes END and flushes: the stream is complete. Returns the
        totals END holds (also kept in .totals)."""
        self.totals = Totals(self._w.finish())
        return self.totals

    def close(self) -> None:
        """Frees the writer (and closes the file it created). Without
        finish() first, the stream has no END."""
        self._w.close()

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the output so far."""
        return self._w.bytes_written

    @property
    def finished(self) -> bool:
        return self._w.finished

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and not self._w.closed and not self._w.finished:
                self.finish()
        finally:
            self.close()

    def __repr__(self) -> str:
        state = ("closed" if self._w.closed else "finished" if self._w.finished
                 else f"{self._w.bytes_written} bytes written")
        return f"<migstream.Writer: {state}>"

