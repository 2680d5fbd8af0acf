"""Reading: every record type as its Python object, the inputs open() takes,
page data as views into the reader's buffer."""

import io
import mmap
import os

import pytest

import migstream
from migstream import PageState
from conftest import CPU_STATE, PAGE, guest_ram, write_every_record


def test_every_record_type(every_record):
    r = migstream.open(every_record)
    h = r.header
    # A stream in one piece carries the lowest minor that defines what it
    # uses (FORMAT.md section 11.2), below the newest the library knows.
    assert (h.major, h.minor) == (1, 1)
    assert migstream.FORMAT_VERSION == (1, 2)
    assert (h.writer_name, h.writer_version, h.page_size) == ("pytest", "1.0", 4096)
    assert h.required_features == int(
        migstream.Feature.FILL | migstream.Feature.DISCARDED | migstream.Feature.IN_PLACE |
        migstream.Feature.OVERLAYS)
    assert r.format == "migstream"

    seen = []
    pages = {}
    for rec in r:
        seen.append(rec.type)
        assert rec.known or rec.type == 0x8001
        assert rec.index == len(seen) - 1
        assert rec.offset > 0 and rec.length > 0 and rec.status == 0
        if isinstance(rec, migstream.Info):
            assert (rec.machine, rec.description) == ("pc-test", "every record type")
        elif isinstance(rec, migstream.Regions):
            assert [g.name for g in rec.regions] == ["pc.ram", "vga.vram"]
            ram, vram = rec.regions
            assert (ram.id, ram.gpa, ram.size, ram.page_size, ram.pages) == (0, 0, 64 * PAGE,
                                                                            PAGE, 64)
            assert (vram.id, vram.gpa, vram.size, vram.page_size) == (7, None, 16 * 8192, 8192)
        elif isinstance(rec, migstream.Pages):
            for x in rec.extents:
                pages.setdefault(rec.region.name, {})
                for p in range(x.first, x.first + x.count):
                    pages[rec.region.name][p] = (x.state, x.arg)
            assert len(rec.data) == rec.pages_by_state().get(PageState.DATA, 0) * rec.page_size
        elif isinstance(rec, migstream.Round):
            assert rec.number in (0, 1, 2)
            if rec.number == 1:
                assert (rec.tracker, rec.granularity, rec.dirty, rec.final) == (
                    migstream.Tracker.BITMAP, 4096, 4, False)
            if rec.number == 2:
                assert rec.final and rec.dirty is None and rec.tracker == migstream.Tracker.PML
        elif isinstance(rec, migstream.Overlays):
            for o in rec.overlays:
                assert len(o.render()) == 4096
            kinds = [o.kind for o in rec.overlays]
            assert migstream.OverlayKind.HYPERCALL in kinds or \
                migstream.OverlayKind.REFERENCE_TSC in kinds or \
                migstream.OverlayKind.SYNIC_MESSAGE in kinds
        elif isinstance(rec, migstream.Device):
            if rec.path == "cpu/0":
                assert (rec.instance, rec.schema, rec.version) == (0, "x86-cpu", 3)
                assert rec.state == CPU_STATE
                assert rec.state_cbor == migstream.cbor_encode(CPU_STATE)
            else:
                assert rec.state == {"mac": b"\x52\x54\x00\x12\x34\x56"}
        elif isinstance(rec, migstream.RawRecord):
            assert (rec.type, rec.payload, rec.known) == (0x8001, b"private bytes", False)
            assert rec.type_name == "TYPE 0x8001"
        elif isinstance(rec, migstream.End):
            t = rec.totals
            assert t.records == rec.index and t.bytes == rec.offset
            assert t.devices == 2 and t.rounds == 3 and t.overlays == 4
            assert rec.digest == rec.checksum
    R = migstream.RecordType
    assert set(seen) == {R.INFO, R.REGIONS, R.ROUND, R.PAGES, R.OVERLAY, R.DEVICE, R.END,
                         0x8001}
    assert seen[-1] == R.END
    assert r.next_record() is None and r.next_record() is None
    r.expect_eof()
    ram = pages["pc.ram"]
    assert ram[0] == (PageState.DATA, 0) and ram[1] == (PageState.ZERO, 0)
    assert ram[3] == (PageState.ZERO, 0)  # sent again as zeros in round 1
    assert ram[5] == (PageState.FILL, 0xCCCCCCCCCCCCCCCC)
    assert ram[10] == (PageState.DISCARDED, 0)
    assert ram[21] == (PageState.FILL, 0xDEADBEEF)
    assert pages["vga.vram"][4] == (PageState.IN_PLACE, 0x100000)  # the extent's argument
    assert r.regions == tuple(g for g in r.regions) and r.region(7).name == "vga.vram"
    r.close()
    assert r.closed


def test_overlay_values(every_record):
    ovs = [o for rec in migstream.open(every_record) if isinstance(rec, migstream.Overlays)
           for o in rec.overlays]
    assert len(ovs) == 4
    hc, tsc, synic, tsc2 = ovs
    assert (hc.gfn, hc.kind, hc.vendor) == (1, migstream.OverlayKind.HYPERCALL, 1)
    assert hc.render()[:4] == b"\x0f\x01\xc1\xc3"  # vmcall; ret (FORMAT.md 7.2)
    assert (tsc.frequency, tsc.offset) == (2_000_000_000, -5)
    assert synic.vp == 0 and set(synic.slots) == {3} and synic.slots[3][:5] == b"\x01\x02\x03\x04\x10"
    assert synic.render()[3 * 256:3 * 256 + 5] == b"\x01\x02\x03\x04\x10"
    assert (tsc2.sequence, tsc2.scale, tsc2.frequency) == (3, 1 << 60, None)
    assert tsc2.render()[:4] == (3).to_bytes(4, "little")
    assert hc.priority > tsc.priority > synic.priority
    assert "HYPERCALL" in repr(hc)


def test_extents_are_a_sequence(every_record):
    for rec in migstream.open(every_record):
        if isinstance(rec, migstream.Pages) and len(rec.extents) > 3:
            x = rec.extents
            whole = list(x)
            assert x[:] == whole and x[1:3] == whole[1:3] and x[::-2] == whole[::-2]
            assert x[-1] == whole[-1] and x[-1].first == x[-1][0]
            with pytest.raises(IndexError):
                x[len(x)]
            first, count, state, arg = x[0]
            assert (first, count, state, arg) == (x[0].first, x[0].count, x[0].state, x[0].arg)
            return
    raise AssertionError("no PAGES record with several extents")


def test_page_data_is_the_pages(every_record):
    ram = guest_ram()
    for rec in migstream.open(every_record):
        if isinstance(rec, migstream.Pages) and rec.region.name == "pc.ram":
            for x, data in rec.iter_extents():
                if x.state == PageState.DATA:
                    assert bytes(data) == bytes(ram[x.first * PAGE:(x.first + x.count) * PAGE])
                else:
                    assert data is None
            for p, data in rec.iter_pages():
                if p != 3:
                    assert data == ram[p * PAGE:(p + 1) * PAGE]
            assert rec.copy() == bytes(rec.data)


def test_page_data_is_a_view_released_at_the_next_record(every_record):
    r = migstream.open(every_record)
    kept = None
    for rec in r:
        if isinstance(rec, migstream.Pages) and len(rec.data):
            kept = rec
            break
    data = kept.data
    assert isinstance(data, memoryview) and data.readonly
    assert type(data.obj).__name__ == "PageData"  # exported, not copied
    first = bytes(data[:16])
    piece = data[:PAGE]  # a slice: it outlives the release, with undefined bytes
    r.next_record()
    with pytest.raises(ValueError):
        data[0]
    assert len(piece) == PAGE and isinstance(bytes(piece), bytes)
    for _ in r:
        pass
    r.close()
    del kept
    assert len(bytes(piece)) == PAGE  # still readable after close: never freed memory
    assert len(first) == 16


def test_inputs_of_every_kind(tmp_path, every_record):
    blob = every_record.read_bytes()

    def summary(src):
        with migstream.open(src) as r:
            return [(rec.type, rec.offset, rec.checksum) for rec in r]

    want = summary(str(every_record))
    assert summary(every_record) == want  # os.PathLike
    assert summary([every_record]) == want
    assert summary(blob) == want
    assert summary(bytearray(blob)) == want
    assert summary(memoryview(blob)) == want
    with open(every_record, "rb") as f:
        assert summary(f) == want  # a file object: readinto()
    assert summary(io.BytesIO(blob)) == want

    class ReadOnly:  # read() and nothing else
        def __init__(self, b):
            self.f = io.BytesIO(b)

        def read(self, n):
            return self.f.read(min(n, 1000))

    assert summary(ReadOnly(blob)) == want
    with open(every_record, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert summary(m) == want
    # A descriptor is read from where it stands, and stays open.
    padded = tmp_path / "padded"
    padded.write_bytes(b"junk before" + blob)
    fd = os.open(padded, os.O_RDONLY)
    try:
        os.lseek(fd, len(b"junk before"), os.SEEK_SET)
        assert summary(fd) == want
        os.fstat(fd)
    finally:
        os.close(fd)


def test_formats_and_names():
    assert migstream.formats()[0] == "migstream"
    assert migstream.strerror(-8).startswith("MS_ECHECKSUM")
    assert migstream.__version__.count(".") == 2


def test_compressed_and_threaded_streams_read_alike(tmp_path):
    plain, packed, threaded = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_every_record(plain)
    write_every_record(packed, compress_level=3)
    write_every_record(threaded, compress_level=3, threads=2)
    assert packed.read_bytes() == threaded.read_bytes()  # one stream, whatever the threads

    def pages(p):
        out = []
        for rec in migstream.open(p):
            if isinstance(rec, migstream.Pages):
                out.append((rec.region.id, list(rec.extents), rec.copy()))
        return out

    assert pages(plain) == pages(packed)
    encodings = {rec.encoding for rec in migstream.open(packed)
                 if isinstance(rec, migstream.Pages) and len(rec.data)}
    assert 1 in encodings


def test_reprs(every_record):
    with migstream.open(every_record) as r:
        assert "migstream" in repr(r)
        assert "Header" in repr(r.header)
        for rec in r:
            assert repr(rec).startswith("<")
        assert "closed" not in repr(r)
    assert "closed" in repr(r)
    with pytest.raises(ValueError):
        r.next_record()


def test_limits_are_passed_to_the_reader(every_record):
    with pytest.raises(migstream.LimitError) as e:
        for _ in migstream.open(every_record, max_regions=1):
            pass
    assert e.value.record == 1  # the REGIONS record
    with pytest.raises(ValueError):
        migstream.open(every_record, max_cbor_depth=1000)


def test_non_blocking_input_raises_would_block_and_goes_on(every_record):
    """A descriptor with O_NONBLOCK: when no byte is there the reader raises
    WouldBlockError (MS_EAGAIN), which is not a failure: the same reader
    goes on once more bytes came."""
    import select
    import threading
    blob = every_record.read_bytes()
    rfd, wfd = os.pipe()

    def feed():  # the rest, in pieces, as a peer would send it
        for k in range(700, len(blob), 5000):
            os.write(wfd, blob[k:k + 5000])
        os.close(wfd)

    try:
        os.set_blocking(rfd, False)
        os.write(wfd, blob[:700])
        r = migstream.open(rfd)  # the preamble is there
        got = []
        with pytest.raises(migstream.WouldBlockError) as e:
            for rec in r:
                got.append((rec.type, rec.checksum))
        assert isinstance(e.value, BlockingIOError) and e.value.status == -15
        t = threading.Thread(target=feed)
        t.start()
        blocked = 0
        while True:
            try:
                for rec in r:
                    got.append((rec.type, rec.checksum))
                break
            except migstream.WouldBlockError:
                blocked += 1
                select.select([rfd], [], [], 5)
        t.join()
        r.expect_eof()
    finally:
        os.close(rfd)
    assert got == [(rec.type, rec.checksum) for rec in migstream.open(blob)]
