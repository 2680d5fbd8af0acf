"""The library's engines from Python: replay through callbacks, replay into
a directory, the final memory of a region as an mmap, and diff."""

from __future__ import annotations

import builtins
import enum
import json
import mmap
import os
import shutil
import tempfile
import weakref
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Union

from . import _migstream
from ._reader import Inputs, Reader
from ._types import Header, Overlay, PageState, Region, Totals, Tracker, _enum

CborError = _migstream.CborError

ReaderOrInputs = Union[Reader, Inputs]


def _name(source: ReaderOrInputs) -> Optional[str]:
    """What messages call a side: its (main) file name when it has one."""
    first = source[0] if isinstance(source, (list, tuple)) and source else source
    if isinstance(first, (str, os.PathLike)):
        return os.fspath(first)  # type: ignore[return-value]
    return None


def _reader(source: ReaderOrInputs, open_kw: Dict[str, Any]) -> Reader:
    if isinstance(source, Reader):
        if open_kw:
            raise TypeError("open options go with inputs, not with a Reader")
        return source
    return Reader(source, **open_kw)


class DeviceState:
    """A device's state as the replay engine hands it over: path, instance,
    schema, version, state_cbor (one CBOR item) and state (decoded)."""

    __slots__ = ("path", "instance", "schema", "version", "state_cbor")

    def __init__(self, path: str, instance: int, schema: str, version: int,
                 state_cbor: bytes) -> None:
        self.path, self.instance, self.schema, self.version = path, instance, schema, version
        self.state_cbor = state_cbor

    @property
    def state(self) -> Any:
        return _migstream.cbor_decode(self.state_cbor, _migstream.MAX_CBOR_DEPTH)

    def __repr__(self) -> str:
        return (f"DeviceState({self.path!r}, instance={self.instance}, schema={self.schema!r}, "
                f"version={self.version}, {len(self.state_cbor)} bytes of CBOR)")


# ------------------------------------------------------------------ replay

class _Adapter:
    """Turns the extension's tuples into objects for a user's handler; has
    only the methods the handler has (the engine skips what is missing),
    and always region, to know the regions extents refer to."""

    def __init__(self, h: Any) -> None:
        self._regions: Dict[int, Region] = {}
        user_region = getattr(h, "region", None)

        def region(t: tuple) -> None:
            g = Region._from(t)
            self._regions[g.id] = g
            if user_region is not None:
                user_region(g)

        self.region = region
        if hasattr(h, "header"):
            self.header = lambda t: h.header(Header(t))
        if hasattr(h, "info"):
            self.info = h.info
        if hasattr(h, "extent"):
            self.extent = lambda rid, x, data: h.extent(self._regions[rid], x, data)
        if hasattr(h, "device"):
            self.device = lambda t: h.device(DeviceState(*t))
        if hasattr(h, "unknown"):
            self.unknown = h.unknown
        if hasattr(h, "end"):
            self.end = lambda t, digest: h.end(Totals(t), digest)
        if hasattr(h, "round"):
            self.round = lambda t: h.round(t[0], _enum(Tracker, t[1]), t[2], t[3], t[4])
        if hasattr(h, "overlay"):
            self.overlay = lambda t: h.overlay(Overlay._from(t))


def replay(source: ReaderOrInputs, handler: Any, **open_kw: Any) -> None:
    """Applies a stream with the library's replay engine (ms_replay(), the
    one a VMM receives a migration with), calling @handler's methods, each
    optional, in stream order:

        header(header)                     the preamble
        info(machine, description)         INFO
        region(region)                     each region as it is declared
        extent(region, extent, data)       a run of pages; data is a
                                           memoryview of its bytes (DATA),
                                           valid during the call, else None
        device(device_state)               a DeviceState
        round(number, tracker, granularity, dirty, final)
        overlay(overlay)                   an Overlay
        unknown(type, flags, payload)      a record of an unknown type
        end(totals, digest)                END, once the stream checked out

    A later extent for a page replaces what an earlier one said. An
    exception a method raises stops the replay and propagates. @source is
    a Reader that has read nothing yet, or inputs for open() (with its
    options)."""
    r = _reader(source, open_kw)
    _migstream.replay(r._r, _Adapter(handler))


class ReplayResult(NamedTuple):
    """What replay_to_dir() wrote: the directory, the regions, devices and
    overlays in it, records of unknown types skipped, pages applied (every
    copy counted) and the stream digest."""

    path: str
    regions: int
    devices: int
    overlays: int
    skipped_records: int
    pages: int
    digest: int


def replay_to_dir(source: ReaderOrInputs, path: Union[str, "os.PathLike[str]"], *,
                  force: bool = False, view: bool = False, sync: bool = True,
                  max_map_memory: int = 0, progress: Optional[Callable[[int, int], Any]] = None,
                  name: Optional[str] = None, **open_kw: Any) -> ReplayResult:
    """Writes the stream's final state to the new directory @path, as
    migstream-replay does (docs/man/migstream-replay.1): region-ID.img (a
    sparse image per region), device-N.cbor and .json, overlay-N.bin,
    manifest.json; with view, region-ID.view.img with the overlays applied.
    The directory appears only once the whole stream checked out; an
    existing @path is an error unless force. progress(bytes, pages) is
    called as pages are applied; Ctrl-C stops the replay, leaving nothing.
    """
    r = _reader(source, open_kw)
    t = _migstream.replay_dir(r._r, os.fspath(path), name=name or _name(source), force=force,
                              view=view,
                              no_sync=not sync, max_map_memory=max_map_memory,
                              progress=progress)
    return ReplayResult(os.fspath(path), *t[1:])


class FinalState:
    """A stream's final state, replayed into a temporary directory that is
    removed by close() (or when the object goes): each region's memory as
    an mmap (image()), the devices' last states, and the manifest.

        with migstream.final_state(["vm.qemu", "vm.qemu.chan1"]) as st:
            ram = st.image("pc.ram")       # an mmap.mmap, read-only
            print(ram[0x100000:0x100010])

    An image stays valid after close(): the mapping keeps the file."""

    def __init__(self, source: ReaderOrInputs, *, tmpdir: Optional[str] = None,
                 view: bool = False, max_map_memory: int = 0, **open_kw: Any) -> None:
        top = tempfile.mkdtemp(prefix="migstream-state-", dir=tmpdir)
        self._cleanup = weakref.finalize(self, shutil.rmtree, top, True)
        self.path = os.path.join(top, "state")
        try:
            self.result = replay_to_dir(source, self.path, view=view, sync=False,
                                        max_map_memory=max_map_memory, **open_kw)
            with builtins.open(os.path.join(self.path, "manifest.json"), "rb") as f:
                self.manifest: Dict[str, Any] = json.load(f)
        except BaseException:
            self._cleanup()
            raise
        self.regions: List[Region] = [
            Region(g["id"], g["name"], int(g["size"]), g["page_size"],
                   None if g["gpa"] is None else int(g["gpa"], 16))
            for g in self.manifest["regions"]]

    def region(self, key: Union[int, str, Region]) -> Region:
        """The region with this id, name or Region."""
        for g in self.regions:
            if (isinstance(key, Region) and g.id == key.id) or \
                    (isinstance(key, str) and g.name == key) or \
                    (isinstance(key, int) and not isinstance(key, bool) and g.id == key):
                return g
        raise KeyError(key)

    def image(self, region: Union[int, str, Region], *, view: bool = False) -> mmap.mmap:
        """The final memory of @region (id, name or Region): a read-only
        mmap of its image, exactly the region's size; pages never sent,
        zero, discarded or in place read as zeros. With view (and
        final_state(view=True)): the guest's view, overlays applied."""
        g = self.region(region)
        name = f"region-{g.id}.view.img" if view else f"region-{g.id}.img"
        path = os.path.join(self.path, name)
        if view and not os.path.exists(path):
            path = os.path.join(self.path, f"region-{g.id}.img")  # no overlay in this region
        with builtins.open(path, "rb") as f:
            return mmap.mmap(f.fileno(), g.size, access=mmap.ACCESS_READ)

    def devices(self) -> List[DeviceState]:
        """Each device instance's last state, sorted by path then instance."""
        out = []
        for d in self.manifest["devices"]:
            with builtins.open(os.path.join(self.path, d["cbor"]), "rb") as f:
                out.append(DeviceState(d["path"], d["instance"], d["schema"], d["version"],
                                       f.read()))
        return out

    def close(self) -> None:
        """Removes the directory. Images mapped before stay valid."""
        self._cleanup()

    def __enter__(self) -> "FinalState":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def final_state(source: ReaderOrInputs, **kw: Any) -> FinalState:
    """The final state of a stream (FinalState): replays it with the library
    into a temporary directory (tmpdir=, default $TMPDIR)."""
    return FinalState(source, **kw)


def region_image(source: ReaderOrInputs, region: Union[int, str], **kw: Any) -> mmap.mmap:
    """The final memory of one region of a stream as a read-only mmap."""
    with FinalState(source, **kw) as st:
        return st.image(region)


# -------------------------------------------------------------------- diff

class DiffKind(enum.IntEnum):
    """Kinds of difference (ms_diff_kind, include/migstream/diff.h), in the
    order they are reported."""

    META = 1
    REGION = 2
    REGION_ONLY = 3
    PAGES = 4
    PAGES_TOTAL = 5
    OVERLAY = 6
    OVERLAY_ONLY = 7
    DEVICE_ONLY = 8
    DEVICE = 9
    DEVICE_STATE = 10


_TEXT, _UINT, _ADDRESS, _VERSION, _CBOR = 1, 2, 3, 4, 5


def _value(v: tuple) -> Any:
    vtype, x = v
    if vtype == _CBOR:
        try:
            return _migstream.cbor_decode(x, _migstream.MAX_CBOR_DEPTH)
        except CborError:
            return x  # CBOR that Python cannot hold as it is: the bytes
    return x


class Difference:
    """One difference between two streams' final states (ms_diff_item).
    kind says which members apply:

    META, REGION, DEVICE, DEVICE_STATE: field, a and b (the values; None
        where absent; device-state fields decoded from CBOR);
    REGION_ONLY: side ("a" or "b"), region, states (final pages per state);
    PAGES: region, region_b, the range first .. first + count - 1 in units
        of unit bytes, and state_a, state_b (PageState, or 0: missing);
    PAGES_TOTAL: region, region_b, pages and ranges that differ;
    OVERLAY, OVERLAY_ONLY: overlay, overlay_b (side for _ONLY);
    DEVICE_ONLY, DEVICE, DEVICE_STATE: device, device_b (DeviceState)."""

    __slots__ = ("kind", "side", "field", "a", "b", "region", "region_b", "first", "count",
                 "unit", "state_a", "state_b", "pages", "ranges", "states", "overlay",
                 "overlay_b", "device", "device_b")

    def __init__(self, t: tuple) -> None:
        (kind, side, self.field, a, b, ra, rb, self.first, self.count, self.unit, sa, sb,
         self.pages, self.ranges, states, oa, ob, da, db) = t
        self.kind = _enum(DiffKind, kind)
        self.side = "b" if side else "a"
        self.a = _value(a)
        self.b = _value(b)
        self.region = None if ra is None else Region._from(ra)
        self.region_b = None if rb is None else Region._from(rb)
        self.state_a = _enum(PageState, sa)
        self.state_b = _enum(PageState, sb)
        self.states = None if states is None else {
            _enum(PageState, s): n for s, n in enumerate(states) if n}
        self.overlay = None if oa is None else Overlay._from(oa)
        self.overlay_b = None if ob is None else Overlay._from(ob)
        self.device = None if da is None else DeviceState(*da)
        self.device_b = None if db is None else DeviceState(*db)

    def __repr__(self) -> str:
        k = self.kind
        if k in (DiffKind.META, DiffKind.REGION, DiffKind.DEVICE, DiffKind.DEVICE_STATE):
            where = ""
            if self.region is not None:
                where = f" {self.region.name}"
            if self.device is not None:
                where = f" {self.device.path}/{self.device.instance}"
            return f"<Difference {k.name}{where} {self.field}: {self.a!r} != {self.b!r}>"
        if k == DiffKind.PAGES:
            def name(s: int) -> str:
                return s.name if isinstance(s, PageState) else "MISSING"
            assert self.region is not None
            return (f"<Difference PAGES {self.region.name} units {self.first:#x}.."
                    f"{self.first + self.count - 1:#x} of {self.unit} bytes: "
                    f"{name(self.state_a)} vs {name(self.state_b)}>")
        if k == DiffKind.PAGES_TOTAL:
            assert self.region is not None
            return (f"<Difference PAGES_TOTAL {self.region.name}: {self.pages} pages in "
                    f"{self.ranges} ranges>")
        what = self.region or self.overlay or self.device
        return f"<Difference {getattr(k, 'name', k)} side {self.side}: {what!r}>"


class DiffTotals(NamedTuple):
    """Counts as migstream-diff's summary line gives them."""

    metadata: int
    regions: int
    pages: int
    ranges: int
    devices: int
    overlays: int


class DiffResult:
    """The differences of diff(), in report order. count is the number of
    differences (PAGES_TOTAL items aside): 0 when the two streams leave the
    same state. With a limit, differences past it are counted but not kept
    (truncated)."""

    def __init__(self, t: tuple) -> None:
        self.count: int = t[0]
        self.differences: List[Difference] = [Difference(x) for x in t[1]]
        self.totals = DiffTotals(*t[2])
        self.truncated: bool = t[3]

    @property
    def same(self) -> bool:
        return self.count == 0

    def __iter__(self) -> Iterator[Difference]:
        return iter(self.differences)

    def __len__(self) -> int:
        return len(self.differences)

    def __repr__(self) -> str:
        return f"<DiffResult: {self.count} differences, {self.totals}>"


def diff(a: ReaderOrInputs, b: ReaderOrInputs, *, limit: Optional[int] = None,
         max_map_memory: int = 0, tmpdir: Optional[str] = None,
         **open_kw: Any) -> DiffResult:
    """Compares two streams by the state they leave behind (ms_diff, the
    engine of migstream-diff): metadata, regions, page ranges that differ,
    overlays, devices field by field. Streams of different formats compare
    (a QEMU capture and its import say the same). Each side is a Reader
    that has read nothing yet, or inputs for open() (with its options)."""
    ra = _reader(a, open_kw)
    rb = _reader(b, open_kw)
    return DiffResult(_migstream.diff(ra._r, rb._r, name_a=_name(a), name_b=_name(b),
                                      max_map_memory=max_map_memory, tmpdir=tmpdir,
                                      limit=-1 if limit is None else limit))
