"""Writing: the targets a Writer takes, page memory from any buffer without a
copy, device state from Python values, and round trips through the C
library's tools and back."""

import io
import json
import mmap
import os
import subprocess
import threading

import pytest

import migstream
from migstream import PageState
from conftest import CPU_STATE, PAGE, guest_ram, tool, write_every_record


def stream_bytes(**kw):
    buf = io.BytesIO()
    write_every_record(buf, **kw)
    return buf.getvalue()


def test_targets_write_the_same_bytes(tmp_path):
    want = stream_bytes()
    p = tmp_path / "a.mig"
    write_every_record(str(p))
    assert p.read_bytes() == want
    write_every_record(p)  # os.PathLike, truncated first
    assert p.read_bytes() == want
    fd = os.open(tmp_path / "b.mig", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_every_record(fd)
        os.fstat(fd)  # still open: the caller's
    finally:
        os.close(fd)
    assert (tmp_path / "b.mig").read_bytes() == want
    with open(tmp_path / "c.mig", "wb") as f:
        write_every_record(f)
    assert (tmp_path / "c.mig").read_bytes() == want
    chunks = []
    write_every_record(lambda mv: chunks.append(bytes(mv)))
    assert b"".join(chunks) == want

    class Slow:  # write() that takes a few bytes at a time
        def __init__(self):
            self.out = bytearray()

        def write(self, b):
            n = min(len(b), 7)
            self.out += bytes(b[:n])
            return n

    s = Slow()
    write_every_record(s)
    assert bytes(s.out) == want


def test_stable_memory_writes_the_same_stream():
    assert stream_bytes(stable_memory=True) == stream_bytes()


def write_ram(mem, pages, **kw):
    buf = io.BytesIO()
    with migstream.Writer(buf, **kw) as w:
        w.add_region(0, "ram", pages * PAGE)
        w.pages(0, 0, mem)
    return buf.getvalue()


def test_buffers_of_every_kind():
    np = pytest.importorskip("numpy")
    ram = guest_ram(32)
    want = write_ram(bytes(ram), 32)
    assert write_ram(ram, 32) == want
    assert write_ram(memoryview(ram), 32) == want
    m = mmap.mmap(-1, len(ram))
    m[:] = ram
    assert write_ram(m, 32) == want
    m.close()
    a8 = np.frombuffer(bytes(ram), dtype=np.uint8).copy()
    assert write_ram(a8, 32) == want
    a64 = a8.view(np.uint64).reshape(32, PAGE // 8)  # 2-D, 8-byte words
    assert write_ram(a64, 32) == want
    with pytest.raises((BufferError, ValueError)):
        write_ram(a64[:, ::2], 16)  # not contiguous
    # The memory is exported during the call: a bytearray cannot be resized.
    big = bytearray(4 * PAGE)
    w = migstream.Writer(io.BytesIO())
    w.add_region(0, "ram", 4 * PAGE)
    w.pages(0, 0, big)
    big.extend(b"x")  # after the call, it is the caller's again
    w.close()


def test_pagesv_and_regions_as_objects():
    ram = guest_ram(8)
    buf = io.BytesIO()
    with migstream.Writer(buf) as w:
        region = w.add_region(migstream.Region(3, "ram", 8 * PAGE, gpa=0x100000))
        w.pagesv(region, 0, [ram[:3 * PAGE], memoryview(ram)[3 * PAGE:]])
    data = bytearray(8 * PAGE)
    for rec in migstream.open(buf.getvalue()):
        if isinstance(rec, migstream.Pages):
            assert rec.region == region
            for x, d in rec.iter_extents():
                if d is not None:
                    data[x.first * PAGE:(x.first + x.count) * PAGE] = d
    assert data == ram


def test_dirty_bitmap_sends_exactly_the_dirty_pages():
    np = pytest.importorskip("numpy")
    pages = 200
    ram = np.zeros(pages * PAGE, dtype=np.uint8)
    ram[::PAGE] = 1  # every page non-zero
    bitmap = np.zeros((pages + 63) // 64, dtype=np.uint64)
    dirty = [0, 5, 64, 65, 199]
    for p in dirty:
        bitmap[p // 64] |= np.uint64(1) << np.uint64(p % 64)
    for bm in (bitmap, bytearray(bitmap.tobytes()), memoryview(b"x" + bitmap.tobytes())[1:]):
        buf = io.BytesIO()
        with migstream.Writer(buf) as w:
            w.add_region(0, "ram", pages * PAGE)
            w.round(0)
            w.zero_pages(0, 0, pages)
            w.round(1, tracker=migstream.Tracker.BITMAP, granularity=4096)
            w.dirty(0, bm, 4096, ram)
        sent = []
        for rec in migstream.open(buf.getvalue()):
            if isinstance(rec, migstream.Pages):
                sent += [p for x in rec.extents if x.state == PageState.DATA
                         for p in range(x.first, x.first + x.count)]
        assert sent == dirty


def test_device_state_from_python_values():
    buf = io.BytesIO()
    values = [CPU_STATE, [], {}, 0, -1, 2 ** 64 - 1, -(2 ** 64), 1.5, float("inf"), "é", b""]
    with migstream.Writer(buf) as w:
        for i, v in enumerate(values):
            w.device(f"dev/{i}", i, "test", 1, v)
        w.device("raw", 0, "test", 1, cbor=b"\x83\x01\x02\x03")
        with pytest.raises(TypeError):
            w.device("both", 0, "test", 1, 1, cbor=b"\x01")
        with pytest.raises(TypeError):
            w.device("neither", 0, "test", 1)
        with pytest.raises(TypeError):
            w.device("set", 0, "test", 1, {1, 2})  # no CBOR for a set
    got = [rec for rec in migstream.open(buf.getvalue()) if isinstance(rec, migstream.Device)]
    assert [d.state for d in got[:-1]] == values
    assert got[-1].state == [1, 2, 3]
    assert got[0].state_cbor == migstream.cbor_encode(CPU_STATE)


def test_invalid_raw_cbor_is_refused_by_the_library():
    w = migstream.Writer(io.BytesIO())
    with pytest.raises(migstream.CborError):
        w.device("dev", 0, "s", 1, cbor=b"\x9f\x01\xff")  # an indefinite array
    w.close()


def test_private_records_and_must_understand(tmp_path):
    p = tmp_path / "priv.mig"
    with migstream.Writer(p) as w:
        w.record(0x9000, b"abc")
    raw = [r for r in migstream.open(p) if isinstance(r, migstream.RawRecord)]
    assert [(r.type, r.flags, r.payload) for r in raw] == [(0x9000, 0, b"abc")]
    with migstream.Writer(p) as w:
        w.record(0x9000, b"abc", flags=migstream.MUST_UNDERSTAND)
    with pytest.raises(migstream.UnknownRecordError):
        list(migstream.open(p))
    with pytest.raises(migstream.InvalidArgumentError):
        with migstream.Writer(io.BytesIO()) as w:
            w.record(migstream.RecordType.PAGES, b"")


def test_finish_returns_the_totals_and_only_once(tmp_path):
    w = migstream.Writer(tmp_path / "t.mig")
    w.add_region(0, "ram", 4 * PAGE)
    w.pages(0, 0, guest_ram(4))
    t = w.finish()
    assert t.pages == {PageState.DATA: 2, PageState.ZERO: 2} and t.records == 2
    assert w.totals is t and w.finished
    with pytest.raises(migstream.StateError):
        w.finish()
    assert w.bytes_written == os.path.getsize(tmp_path / "t.mig")
    w.close()


def test_the_c_tools_read_what_python_writes(tmp_path, every_record):
    """Python writer -> C reader (migstream-validate, migstream-dump) and
    Python reader: the same records."""
    v = subprocess.run([tool("validate"), str(every_record)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    dump = subprocess.run([tool("dump"), "--json", str(every_record)], capture_output=True,
                          text=True, check=True).stdout
    lines = [json.loads(x) for x in dump.splitlines()]
    recs = [x for x in lines if x["kind"] == "record"]
    py = list(migstream.open(every_record))
    assert [(x["offset"], x["index"], x["type_code"], x["length"], int(x["checksum"], 16))
            for x in recs] == [(r.offset, r.index, r.type, r.length, r.checksum) for r in py]


def test_python_reads_what_c_writes(tmp_path):
    """C writer (migstream-demo) -> Python reader and Python writer ->
    the same state: the demo's guest written again from Python compares
    equal (diff)."""
    demo = tool("demo")
    p = tmp_path / "demo.mig"
    subprocess.run([demo, "--size", "16", "-o", str(p), "--force"], check=True,
                   capture_output=True)
    again = tmp_path / "again.mig"
    with migstream.open(p) as r, migstream.Writer(again, writer_name="copy") as w:
        for rec in r:
            if isinstance(rec, migstream.Regions):
                for g in rec.regions:
                    w.add_region(g)
            elif isinstance(rec, migstream.Pages):
                for x, data in rec.iter_extents():
                    if data is not None:
                        w.pages(rec.region, x.first, data)
                    elif x.state == PageState.ZERO:
                        w.zero_pages(rec.region, x.first, x.count)
            elif isinstance(rec, migstream.Device):
                w.device(rec.path, rec.instance, rec.schema, rec.version, cbor=rec.state_cbor)
    d = migstream.diff(p, again)
    kinds = {x.kind for x in d}
    assert kinds <= {migstream.DiffKind.META}, d.differences  # writer name, machine


def test_writers_on_several_threads(tmp_path):
    """The GIL is released while the library works: writers on threads run
    side by side and each writes its own stream, byte for byte."""
    want = stream_bytes(compress_level=1)
    out = [None] * 4

    def run(i):
        buf = io.BytesIO()
        write_every_record(buf, compress_level=1)
        out[i] = buf.getvalue()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [want] * 4


def test_non_blocking_output_raises_would_block_and_goes_on():
    """A writer on an O_NONBLOCK pipe raises WouldBlockError when the pipe is
    full; repeating the same call goes on, and the stream is the one a
    blocking output gets."""
    import fcntl
    ram = bytes(range(256)) * (64 * PAGE // 256)
    buf = io.BytesIO()
    with migstream.Writer(buf) as w:
        w.add_region(0, "ram", len(ram))
        w.pages(0, 0, ram)
    want = buf.getvalue()

    rfd, wfd = os.pipe()
    got = bytearray()
    blocked = 0
    try:
        fcntl.fcntl(wfd, 1031, 4096)  # F_SETPIPE_SZ: a small pipe
        os.set_blocking(wfd, False)
        w = migstream.Writer(wfd)
        w.add_region(0, "ram", len(ram))
        for call in (lambda: w.pages(0, 0, ram), w.finish):
            while True:
                try:
                    call()
                    break
                except migstream.WouldBlockError:
                    blocked += 1
                    got += os.read(rfd, 1 << 20)
        w.close()
        os.close(wfd)
        wfd = -1
        while True:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            got += chunk
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    assert blocked > 0 and bytes(got) == want
