"""The values a stream carries, as Python objects: the enumerations of
FORMAT.md, the header, regions, overlays, totals and one record class per
record type. The reader builds them from the tuples the extension hands out
(python/src/reader.c); none of them holds a reference into the reader's
buffers except Pages.data, which is released at the next record."""

from __future__ import annotations

import enum
from typing import Any, Dict, Iterator, Mapping, NamedTuple, Optional, Tuple

from . import _migstream

Extent = _migstream.Extent
Extents = _migstream.Extents


class RecordType(enum.IntEnum):
    """Record types (FORMAT.md section 4.3)."""

    INFO = 1
    REGIONS = 2
    PAGES = 3
    DEVICE = 4
    END = 5
    ROUND = 6
    OVERLAY = 7
    PART = 8


class PageState(enum.IntEnum):
    """The state of a run of pages (FORMAT.md section 6.2)."""

    DATA = 1
    ZERO = 2
    DISCARDED = 3
    FILL = 4
    IN_PLACE = 5


class Feature(enum.IntFlag):
    """Required feature bits of the preamble (FORMAT.md section 3.2)."""

    DISCARDED = 1 << 0
    FILL = 1 << 1
    IN_PLACE = 1 << 2
    OVERLAYS = 1 << 3
    PARTS = 1 << 4


class Tracker(enum.IntEnum):
    """Dirty-page trackers a ROUND names (FORMAT.md section 6.4). A stream
    may name others: Round.tracker is then a plain int."""

    NONE = 0
    BITMAP = 1
    RING = 2
    PML = 3


class OverlayKind(enum.IntEnum):
    """Hypervisor overlay kinds (FORMAT.md section 7.2)."""

    HYPERCALL = 1
    REFERENCE_TSC = 2
    SYNIC_MESSAGE = 3
    SYNIC_EVENT_FLAGS = 4


MUST_UNDERSTAND = 0x0001
"""Record flag: a reader that does not know the type must refuse the stream."""


_members: Dict[Any, Dict[int, Any]] = {}


def _enum(cls: Any, value: int) -> int:
    """The member of @cls for @value, or @value when it has none (a record
    type or tracker of a later format). A dict lookup: calling an Enum
    class costs a microsecond, which per record shows."""
    m = _members.get(cls)
    if m is None:
        m = _members[cls] = {int(e): e for e in cls}
    return m.get(value, value)


class Header:
    """The preamble (FORMAT.md section 3). For a stream of another format
    (QEMU's), the values its reader gives it."""

    __slots__ = ("major", "minor", "page_size", "required_features", "optional_features",
                 "writer_name", "writer_version", "checksum")

    major: int
    minor: int
    page_size: int
    required_features: int
    optional_features: int
    writer_name: str
    writer_version: str
    checksum: int

    def __init__(self, t: tuple) -> None:
        (self.major, self.minor, self.page_size, self.required_features,
         self.optional_features, self.writer_name, self.writer_version, self.checksum) = t

    @property
    def version(self) -> str:
        """The format version, "MAJOR.MINOR"."""
        return f"{self.major}.{self.minor}"

    def __repr__(self) -> str:
        return (f"Header(format {self.version}, writer {self.writer_name!r} "
                f"{self.writer_version!r}, page_size={self.page_size}, "
                f"required_features={self.required_features:#x})")


class Region:
    """A memory region (FORMAT.md section 5.2): id, name, guest-physical
    base (None when the stream gives none), size and page size in bytes."""

    __slots__ = ("id", "name", "gpa", "size", "page_size")

    id: int
    name: str
    gpa: Optional[int]
    size: int
    page_size: int

    def __init__(self, id: int, name: str, size: int, page_size: int = 4096,
                 gpa: Optional[int] = None) -> None:
        self.id = id
        self.name = name
        self.size = size
        self.page_size = page_size
        self.gpa = gpa

    @classmethod
    def _from(cls, t: tuple) -> "Region":
        id, name, gpa, size, page_size = t
        return cls(id, name, size, page_size, gpa)

    @property
    def pages(self) -> int:
        """size // page_size."""
        return self.size // self.page_size

    def _key(self) -> tuple:
        return (self.id, self.name, self.gpa, self.size, self.page_size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Region) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        gpa = "None" if self.gpa is None else f"{self.gpa:#x}"
        return (f"Region(id={self.id}, name={self.name!r}, gpa={gpa}, size={self.size:#x}, "
                f"page_size={self.page_size})")


class Overlay:
    """A hypervisor overlay page (FORMAT.md section 7.2): a 4 KiB guest frame
    whose contents follow from its kind and parameters. Only the parameters
    of its kind matter: vendor (HYPERCALL); frequency, or sequence and scale,
    and offset (REFERENCE_TSC); vp and slots, a dict {sint: 256 bytes}
    (SYNIC_MESSAGE, SYNIC_EVENT_FLAGS)."""

    __slots__ = ("gfn", "kind", "vendor", "frequency", "sequence", "scale", "offset", "vp",
                 "slots")

    def __init__(self, gfn: int, kind: int, *, vendor: int = 0,
                 frequency: Optional[int] = None, sequence: int = 0, scale: int = 0,
                 offset: int = 0, vp: int = 0,
                 slots: Optional[Mapping[int, bytes]] = None) -> None:
        self.gfn = gfn
        self.kind = _enum(OverlayKind, kind)
        self.vendor = vendor
        self.frequency = frequency
        self.sequence = sequence
        self.scale = scale
        self.offset = offset
        self.vp = vp
        self.slots = dict(slots) if slots is not None else None

    @classmethod
    def _from(cls, t: tuple) -> "Overlay":
        gfn, kind, vendor, freq, seq, scale, off, vp, slots = t
        return cls(gfn, kind, vendor=vendor, frequency=freq, sequence=seq, scale=scale,
                   offset=off, vp=vp, slots=slots)

    def _tuple(self) -> tuple:
        slots = self.slots
        if slots is None and self.kind in (OverlayKind.SYNIC_MESSAGE,
                                           OverlayKind.SYNIC_EVENT_FLAGS):
            slots = {}
        return (self.gfn, int(self.kind), self.vendor, self.frequency, self.sequence,
                self.scale, self.offset, self.vp,
                None if slots is None else {int(k): bytes(v) for k, v in slots.items()})

    @property
    def gpa(self) -> int:
        """The guest-physical address of the frame."""
        return self.gfn * 4096

    @property
    def priority(self) -> int:
        """The kind's fixed priority: the highest one at a frame is active."""
        return _migstream.overlay_priority(int(self.kind))

    def render(self) -> bytes:
        """The 4096 bytes the guest sees at the frame (ms_overlay_render())."""
        return _migstream.overlay_render(self._tuple())

    def __repr__(self) -> str:
        kind = self.kind.name if isinstance(self.kind, OverlayKind) else str(self.kind)
        if self.kind == OverlayKind.HYPERCALL:
            p = f"vendor={self.vendor}"
        elif self.kind == OverlayKind.REFERENCE_TSC:
            p = (f"frequency={self.frequency}" if self.frequency is not None
                 else f"sequence={self.sequence}, scale={self.scale:#x}")
            p += f", offset={self.offset}"
        else:
            p = f"vp={self.vp}, slots={sorted(self.slots or {})}"
        return f"Overlay(gfn={self.gfn:#x}, {kind}, {p})"


class Totals:
    """The END record's totals (FORMAT.md section 8): records and bytes
    before END, pages per state (every copy counted), devices, rounds and
    overlays."""

    __slots__ = ("records", "bytes", "pages", "devices", "rounds", "overlays")

    records: int
    bytes: int
    pages: Dict[PageState, int]
    devices: int
    rounds: int
    overlays: int

    def __init__(self, t: tuple) -> None:
        self.records, self.bytes, pages, self.devices, self.rounds, self.overlays = t
        self.pages = {_enum(PageState, s): n for s, n in enumerate(pages) if n}

    def __repr__(self) -> str:
        pages = ", ".join(f"{getattr(s, 'name', s)}={n}" for s, n in self.pages.items())
        return (f"Totals(records={self.records}, bytes={self.bytes}, pages={{{pages}}}, "
                f"devices={self.devices}, rounds={self.rounds}, overlays={self.overlays})")


class Problem:
    """A problem a reader opened with keep_going=True stepped over."""

    __slots__ = ("status", "offset", "record", "message")

    def __init__(self, t: tuple) -> None:
        self.status, self.offset, record, self.message = t
        self.record = None if record < 0 else record

    def __repr__(self) -> str:
        return (f"Problem({_migstream.strerror(self.status).split(':')[0]}, "
                f"offset={self.offset}, record={self.record}, {self.message!r})")


# ------------------------------------------------------------------ records

class Record:
    """A record as the reader hands it out. type is a RecordType (an int for
    a type this library does not know); offset is the byte offset of its
    header (for another format's stream: of the item it came from); index
    counts records from 0. status is 0, or with keep_going the status of a
    problem in this record (its contents are then None unless only the
    checksum failed)."""

    # The fields every record has stay in the extension's tuple, read on
    # access: building a record costs one assignment, not ten.
    __slots__ = ("_t",)
    _t: tuple

    def _common(self, t: tuple) -> None:
        self._t = t

    @property
    def type(self) -> int:
        """The record type: a RecordType, or an int for a type this library
        does not know."""
        return _enum(RecordType, self._t[0])

    @property
    def flags(self) -> int:
        """The record's flags (MUST_UNDERSTAND)."""
        return self._t[1]

    @property
    def length(self) -> int:
        """Payload bytes on the wire (0 for another format's stream)."""
        return self._t[2]

    @property
    def offset(self) -> int:
        """Byte offset of the record header (another format: of its item)."""
        return self._t[3]

    @property
    def index(self) -> int:
        """Record index, 0 for the first record after the preamble."""
        return self._t[4]

    @property
    def checksum(self) -> int:
        """The record's chained XXH3-64 (0 for another format's stream)."""
        return self._t[5]

    @property
    def known(self) -> bool:
        """False for a record type this library does not know."""
        return self._t[6]

    @property
    def status(self) -> int:
        """0, or (keep_going) the status of a problem found in the record."""
        return self._t[7]

    @property
    def unknown_keys(self) -> Tuple[str, ...]:
        """Payload paths of map keys this reader does not know ("/9",
        "/1/7"), which a later minor version added; at most 64 listed."""
        return self._t[8]

    @property
    def unknown_key_count(self) -> int:
        """How many unknown keys the payload holds, listed or not."""
        return self._t[9]

    @property
    def part(self) -> Optional[int]:
        """For a migration in parts (FORMAT.md section 2.1): the index of
        the part the record came from, whose stream offset and index count
        in; None otherwise (and for the END of a whole merged migration)."""
        return self._t[11]

    @property
    def type_name(self) -> str:
        """"PAGES", or "TYPE 0x8001" for a type this library does not know."""
        return self.type.name if isinstance(self.type, RecordType) else f"TYPE {self.type:#x}"

    def _describe(self) -> str:
        return ""

    def __repr__(self) -> str:
        d = self._describe()
        s = f" status={self.status}" if self.status else ""
        return (f"<{type(self).__name__} #{self.index} at {self.offset}{s}"
                f"{': ' + d if d else ''}>")


class Info(Record):
    """INFO (FORMAT.md section 5.1): machine type and description, None when
    absent."""

    __slots__ = ("machine", "description")
    machine: Optional[str]
    description: Optional[str]

    def _describe(self) -> str:
        return f"machine={self.machine!r}"


class Regions(Record):
    """REGIONS (FORMAT.md section 5.2): the regions the record declares."""

    __slots__ = ("regions",)
    regions: Tuple[Region, ...]

    def _describe(self) -> str:
        return ", ".join(f"{r.id}:{r.name}" for r in self.regions)


class Pages(Record):
    """PAGES (FORMAT.md section 6): runs of pages of one region.

    extents is a sequence of Extent (first, count, state, arg). data is a
    read-only memoryview of the DATA pages' bytes, extent after extent, page
    after page, without a copy: it is a view into the reader's buffer, valid
    until the reader reads the next record, when it is released (using it
    then raises ValueError). Slices or numpy arrays made from it stay
    readable but may then show other bytes: keep copy() (or bytes(...)) to
    hold on to them."""

    __slots__ = ("region", "extents", "data", "encoding")
    region: Region
    extents: Extents
    data: memoryview
    encoding: int

    def copy(self) -> bytes:
        """The DATA pages' bytes, copied."""
        return bytes(self.data)

    @property
    def page_size(self) -> int:
        return self.region.page_size

    def iter_extents(self) -> Iterator[Tuple[Extent, Optional[memoryview]]]:
        """Each extent with its bytes: a slice of data for DATA extents
        (count * page_size bytes, same validity as data), None for others."""
        ps = self.region.page_size
        off = 0
        data = self.data
        for x in self.extents:
            if x.state == PageState.DATA:
                n = x.count * ps
                yield x, data[off:off + n]
                off += n
            else:
                yield x, None

    def iter_pages(self) -> Iterator[Tuple[int, memoryview]]:
        """(page index, page bytes) for each DATA page, in order."""
        ps = self.region.page_size
        off = 0
        data = self.data
        for x in self.extents:
            if x.state == PageState.DATA:
                for p in range(x.first, x.first + x.count):
                    yield p, data[off:off + ps]
                    off += ps

    def pages_by_state(self) -> Dict[int, int]:
        """Pages per state in this record: {PageState: count}."""
        return {_enum(PageState, s): n
                for s, n in enumerate(self.extents.pages_by_state()) if n}

    def _describe(self) -> str:
        counts = ", ".join(f"{getattr(s, 'name', s)} {n}"
                           for s, n in self.pages_by_state().items())
        return f"region {self.region.id} ({self.region.name}), {counts}"


class Device(Record):
    """DEVICE (FORMAT.md section 7.1): one device instance's state.

    state_cbor holds the state as the stream carries it (one CBOR item);
    state decodes it to Python values on first use (see cbor_decode())."""

    __slots__ = ("path", "instance", "schema", "version", "state_cbor", "_state",
                 "_max_depth")
    path: str
    instance: int
    schema: str
    version: int
    state_cbor: bytes

    @property
    def state(self) -> Any:
        """The state as Python values: dict, list, int, float, str, bytes,
        bool, None. Raises CborError for CBOR that Python cannot hold as it
        is (a map key that is a map, a key twice): state_cbor has it all."""
        try:
            return self._state
        except AttributeError:
            self._state = _migstream.cbor_decode(self.state_cbor, self._max_depth)
            return self._state

    def state_text(self, form: str = "diag") -> str:
        """The state as text: "diag" (RFC 8949 diagnostic notation) or
        "json", as migstream-dump and migstream-replay print it."""
        return _migstream.cbor_format(self.state_cbor, {"diag": 0, "json": 1}[form],
                                      self._max_depth)

    def _describe(self) -> str:
        return (f"{self.path!r} instance {self.instance}, schema {self.schema!r} "
                f"v{self.version}, {len(self.state_cbor)} bytes of CBOR")


class Round(Record):
    """ROUND (FORMAT.md section 6.4): the start of a pre-copy round."""

    __slots__ = ("number", "tracker", "granularity", "dirty", "final")
    number: int
    tracker: int
    granularity: int
    dirty: Optional[int]
    final: bool

    def _describe(self) -> str:
        t = self.tracker.name if isinstance(self.tracker, Tracker) else self.tracker
        return f"round {self.number}, tracker {t}{', final' if self.final else ''}"


class Overlays(Record):
    """OVERLAY (FORMAT.md section 7.2): the overlays the record adds."""

    __slots__ = ("overlays",)
    overlays: Tuple[Overlay, ...]

    def _describe(self) -> str:
        return f"{len(self.overlays)} overlays"


class End(Record):
    """END (FORMAT.md section 8): the totals, checked by the reader, and the
    stream digest (the END record's chained checksum; 0 for a stream of
    another format)."""

    __slots__ = ("totals", "digest")
    totals: Totals
    digest: int

    def _describe(self) -> str:
        return f"{self.totals.records} records, digest {self.digest:#018x}"


class Part(Record):
    """PART (FORMAT.md section 5.3): which part of a migration in parts this
    stream is; its index is the record's part, of count parts, all with
    migration_id."""

    __slots__ = ("migration_id", "count")
    migration_id: bytes
    count: int

    def _describe(self) -> str:
        return f"part {self.part} of {self.count}, migration {self.migration_id.hex()}"


class PartInfo(NamedTuple):
    """What a reader knows of one part of a migration in parts
    (Reader.parts()): its index of count, the migration id, the input's
    name, the records and bytes read from it so far, and whether its END
    was read."""

    index: int
    count: int
    migration_id: bytes
    name: Optional[str]
    records: int
    bytes: int
    ended: bool


class RawRecord(Record):
    """A record the reader does not decode: one of a type this library does
    not know (without MUST_UNDERSTAND), whose payload holds its bytes; or,
    with keep_going, a known one whose contents break the format (status
    says how), whose payload is None."""

    __slots__ = ("payload",)
    payload: Optional[bytes]

    def _describe(self) -> str:
        n = "no" if self.payload is None else len(self.payload)
        return f"{self.type_name}, {n} payload bytes"
