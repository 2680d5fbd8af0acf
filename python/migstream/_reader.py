"""Reading a stream of any format the library reads: migstream.open()."""

from __future__ import annotations

import mmap
import os
from typing import IO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _migstream
from ._types import (Device, End, Header, Info, Overlay, Overlays, Pages, Part, PartInfo,
                     Problem, RawRecord,
                     Record, RecordType, Region, Regions, Round, Totals, Tracker, _enum)

Source = Union[str, "os.PathLike[str]", int, IO[bytes], bytes, bytearray, memoryview,
               mmap.mmap]
"""One input: a path, a file descriptor (read from its current position, not
closed), a binary file object (its readinto() or read() is called), or bytes
in memory (any object with the buffer protocol)."""

Inputs = Union[Source, Sequence[Source]]
"""One input, or a stream's inputs in any order: a QEMU multifd stream's
main stream and its channels."""


_new = object.__new__


def _inputs(inputs: Inputs) -> list:
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    return [inputs]


def open(inputs: Inputs, *, format: Optional[str] = None, max_record_size: int = 0,
         max_regions: int = 0, max_cbor_depth: int = 0, max_overlays: int = 0,
         keep_going: bool = False) -> "Reader":
    """Opens a stream of any format this build reads (formats()): a
    libmigstream stream, or another VMM's (QEMU's migration stream, with its
    multifd channels given as further inputs, or as a mapped-ram file),
    recognized by its first bytes unless format names it, and reads its
    preamble (Reader.header).

    The limits lower the reader's defaults (FORMAT.md section 9; 0 keeps
    the default). With keep_going, problems the reader can step over (a
    checksum mismatch, a malformed record, END totals that disagree) do not
    stop it: they are collected in Reader.problems and the records concerned
    carry a status.

    Raises OSError when a file cannot be opened, NotAStreamError when an
    input is no stream this build reads (TruncatedError when it is empty or
    ends in the preamble), InvalidArgumentError for inputs that do not
    belong together, and what a damaged preamble raises."""
    return Reader(inputs, format=format, max_record_size=max_record_size,
                  max_regions=max_regions, max_cbor_depth=max_cbor_depth,
                  max_overlays=max_overlays, keep_going=keep_going)


class Reader:
    """A stream being read, one record at a time: iterate it for Record
    objects (Info, Regions, Pages, Device, Round, Overlays, End, RawRecord),
    in stream order, up to and including End.

    Every record is checked (framing, checksum chain, contents, END totals)
    before it is handed out; a failure raises a migstream.Error subclass
    whose offset and record say where, and the reader stays failed (every
    later call raises the same). Memory stays bounded by the largest record,
    whatever the stream's size. The GIL is released while the library reads.
    """

    def __init__(self, inputs: Inputs, *, format: Optional[str] = None,
                 max_record_size: int = 0, max_regions: int = 0, max_cbor_depth: int = 0,
                 max_overlays: int = 0, keep_going: bool = False) -> None:
        self._r = _migstream.Reader(_inputs(inputs), format, max_record_size, max_regions,
                                    max_cbor_depth, max_overlays, keep_going)
        # The preamble now: an input that is no stream fails here, not at
        # the first record (ms_open() reads a lone unknown input as this
        # library's format, whose reader fails on its first call).
        self._header: Optional[Header] = Header(self._r.header())
        self._regions: Dict[int, Region] = {}
        self._problems: List[Problem] = []
        self._depth = _migstream.MAX_CBOR_DEPTH  # the library bounded the nesting already

    # ---- what the stream says

    @property
    def header(self) -> Header:
        """The preamble, read on first use."""
        if self._header is None:
            self._header = Header(self._r.header())
        return self._header

    @property
    def format(self) -> str:
        """"migstream", or the format of another VMM's stream ("qemu")."""
        return self._r.format

    @property
    def offset(self) -> int:
        """Bytes consumed from the (main) input so far."""
        return self._r.offset

    @property
    def regions(self) -> Tuple[Region, ...]:
        """The regions declared so far, in stream order."""
        self._sync_regions()
        return tuple(self._regions.values())

    def region(self, id: int) -> Region:
        """The region with id @id (KeyError when none is declared)."""
        if id not in self._regions:
            self._sync_regions()
        return self._regions[id]

    def parts(self) -> Tuple[PartInfo, ...]:
        """The parts of a migration in parts (FORMAT.md section 2.1), in
        part index order: every part for a reader over all of them, the
        one part once its PART record was read for a reader of one part,
        none for a stream that is not a part."""
        return tuple(PartInfo(*t) for t in self._r.parts() if t is not None)

    @property
    def problems(self) -> List[Problem]:
        """With keep_going: the problems stepped over so far."""
        self._problems.extend(Problem(t) for t in self._r.take_problems())
        return self._problems

    # ---- reading

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        t = self._r.next()
        if t is None:
            raise StopIteration
        return self._build(t)

    def next_record(self) -> Optional[Record]:
        """The next record, or None after End."""
        t = self._r.next()
        if t is None:
            return None
        return self._build(t)

    def expect_eof(self) -> None:
        """After End: checks that nothing follows it in the input (a file
        must hold nothing after END, FORMAT.md section 2). Raises
        CorruptError when bytes follow, StateError before End."""
        self._r.expect_eof()

    def close(self) -> None:
        """Frees the reader and closes the files it opened. Views of page
        data taken before stay readable (with undefined contents)."""
        self._r.close()

    @property
    def closed(self) -> bool:
        return self._r.closed

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._r.closed else f"{self._r.records} records read"
        return f"<migstream.Reader {self._r.format or '?'}: {state}>"

    # ---- internals

    def _sync_regions(self) -> None:
        for t in self._r.regions():
            if t[0] not in self._regions:
                self._regions[t[0]] = Region._from(t)

    def _build(self, t: tuple) -> Record:
        c = t[10]
        rtype = t[0]
        if rtype == 3 and c is not None:  # PAGES, the hot path
            pg = _new(Pages)
            pg._t = t
            rid, pg.extents, pg.data, pg.encoding = c
            try:
                pg.region = self._regions[rid]
            except KeyError:
                pg.region = self.region(rid)
            return pg
        if not t[6] or c is None:
            rec: Record = RawRecord.__new__(RawRecord)
            rec._common(t)
            rec.payload = c if not t[6] else None  # type: ignore[attr-defined]
            return rec
        if rtype == RecordType.DEVICE:
            rec = Device.__new__(Device)
            rec._common(t)
            rec.path, rec.instance, rec.schema, rec.version, rec.state_cbor = c
            rec._max_depth = self._depth
            return rec
        if rtype == RecordType.REGIONS:
            rec = Regions.__new__(Regions)
            rec._common(t)
            regions = []
            for rt in c:
                g = Region._from(rt)
                self._regions.setdefault(g.id, g)
                regions.append(self._regions[g.id])
            rec.regions = tuple(regions)
            return rec
        if rtype == RecordType.INFO:
            rec = Info.__new__(Info)
            rec._common(t)
            rec.machine, rec.description = c
            return rec
        if rtype == RecordType.ROUND:
            rec = Round.__new__(Round)
            rec._common(t)
            number, tracker, rec.granularity, rec.dirty, rec.final = c
            rec.number = number
            rec.tracker = _enum(Tracker, tracker)
            return rec
        if rtype == RecordType.OVERLAY:
            rec = Overlays.__new__(Overlays)
            rec._common(t)
            rec.overlays = tuple(Overlay._from(o) for o in c)
            return rec
        if rtype == RecordType.PART:
            rec = Part.__new__(Part)
            rec._common(t)
            rec.migration_id, _, rec.count = c
            return rec
        if rtype == RecordType.END:
            rec = End.__new__(End)
            rec._common(t)
            rec.totals = Totals(c[0])
            rec.digest = c[1]
            return rec
        rec = RawRecord.__new__(RawRecord)
        rec._common(t)
        rec.payload = None
        return rec
