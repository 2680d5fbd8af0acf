"""The library's engines from Python: replay() through callbacks,
replay_to_dir(), final_state() and region images, diff()."""

import io
import json
import os

import pytest

import migstream
from migstream import DiffKind, PageState
from conftest import CPU_STATE, PAGE, guest_ram, write_every_record


class Recorder:
    def __init__(self):
        self.calls = []
        self.ram = bytearray(64 * PAGE)

    def header(self, h):
        self.calls.append(("header", h.writer_name))

    def info(self, machine, description):
        self.calls.append(("info", machine))

    def region(self, g):
        self.calls.append(("region", g.name))

    def extent(self, region, x, data):
        self.calls.append(("extent", region.name, x.state))
        if region.name == "pc.ram":
            lo, hi = x.first * PAGE, (x.first + x.count) * PAGE
            if data is not None:
                assert len(data) == hi - lo
                self.ram[lo:hi] = data
            elif x.state == PageState.ZERO:
                self.ram[lo:hi] = bytes(hi - lo)
            elif x.state == PageState.FILL:
                self.ram[lo:hi] = x.arg.to_bytes(8, "little") * ((hi - lo) // 8)

    def device(self, d):
        self.calls.append(("device", d.path, d.state))

    def round(self, number, tracker, granularity, dirty, final):
        self.calls.append(("round", number, final))

    def overlay(self, o):
        self.calls.append(("overlay", o.kind))

    def unknown(self, type, flags, payload):
        self.calls.append(("unknown", type, payload))

    def end(self, totals, digest):
        self.calls.append(("end", totals.devices, digest != 0))


def test_replay_calls_the_handler_in_stream_order(every_record):
    h = Recorder()
    migstream.replay(every_record, h)
    names = [c[0] for c in h.calls]
    assert names[:4] == ["header", "info", "region", "region"] and names[-1] == "end"
    assert ("device", "cpu/0", CPU_STATE) in h.calls
    assert ("unknown", 0x8001, b"private bytes") in h.calls
    assert ("round", 2, True) in h.calls
    assert names.count("overlay") == 4
    assert ("end", 2, True) in h.calls
    want = guest_ram()
    want[3 * PAGE:4 * PAGE] = bytes(PAGE)
    want[10 * PAGE:12 * PAGE] = h.ram[10 * PAGE:12 * PAGE]  # DISCARDED: as they were
    want[20 * PAGE:23 * PAGE] = (0xDEADBEEF).to_bytes(8, "little") * (3 * PAGE // 8)
    assert h.ram == want


def test_a_handler_needs_only_the_methods_it_wants(every_record):
    class Devices:
        def __init__(self):
            self.paths = []

        def device(self, d):
            self.paths.append(d.path)

    h = Devices()
    migstream.replay(every_record, h)
    assert h.paths == ["cpu/0", "pci0/0000:00:03.0/virtio-net"]


def test_a_handler_exception_stops_the_replay(every_record):
    class Stop(Exception):
        pass

    class Failing:
        n = 0

        def extent(self, region, x, data):
            self.n += 1
            if self.n == 3:
                raise Stop("enough")

    h = Failing()
    with pytest.raises(Stop):
        migstream.replay(every_record, h)
    assert h.n == 3


def test_replay_of_a_damaged_stream_names_the_record(every_record):
    blob = bytearray(every_record.read_bytes())
    blob[-30] ^= 1
    with pytest.raises(migstream.Error) as e:
        migstream.replay(bytes(blob), Recorder())
    assert e.value.record is not None


def test_engines_need_a_fresh_reader(every_record):
    r = migstream.open(every_record)
    r.next_record()
    with pytest.raises(migstream.StateError):
        migstream.replay(r, Recorder())
    with pytest.raises(TypeError):
        migstream.replay(migstream.open(every_record), Recorder(), format="migstream")
    r2 = migstream.open(every_record)
    migstream.replay(r2, Recorder())  # a Reader is taken as it is
    with pytest.raises(migstream.StateError):
        migstream.replay(r2, Recorder())


def test_replay_to_dir_writes_the_directory(every_record, tmp_path):
    out = tmp_path / "state"
    seen = []
    res = migstream.replay_to_dir(every_record, out, view=True, sync=False,
                                  progress=lambda b, p: seen.append((b, p)))
    assert res.path == str(out) and res.regions == 2 and res.devices == 2
    assert res.overlays == 4 and res.skipped_records == 1 and res.digest != 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["writer_name"] == "pytest"
    assert (out / "region-0.img").stat().st_size == 64 * PAGE
    assert (out / "region-0.view.img").exists()
    assert seen and seen[-1][1] <= res.pages
    with pytest.raises(migstream.InvalidArgumentError):
        migstream.replay_to_dir(every_record, out)  # exists
    migstream.replay_to_dir(every_record, out, force=True, sync=False)
    blob = every_record.read_bytes()
    with pytest.raises(migstream.TruncatedError) as e:
        migstream.replay_to_dir(blob[:-10], tmp_path / "cut")
    assert e.value.offset is not None and e.value.record is not None
    assert not (tmp_path / "cut").exists()


def test_a_failing_progress_callable_stops_the_replay(every_record, tmp_path):
    def progress(b, p):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError):
        migstream.replay_to_dir(every_record, tmp_path / "s", progress=progress)
    assert not (tmp_path / "s").exists()


def test_final_state_and_region_images(every_record):
    h = Recorder()
    migstream.replay(every_record, h)
    with migstream.final_state(every_record, view=True) as st:
        assert [g.name for g in st.regions] == ["pc.ram", "vga.vram"]
        ram = st.image("pc.ram")
        assert len(ram) == 64 * PAGE
        want = bytearray(h.ram)
        want[10 * PAGE:12 * PAGE] = bytes(2 * PAGE)  # DISCARDED pages are holes
        assert ram[:] == bytes(want)
        assert st.image(0)[:] == ram[:] and st.image(st.regions[0])[:] == ram[:]
        view = st.image("pc.ram", view=True)
        hc = [o for rec in migstream.open(every_record) if isinstance(rec, migstream.Overlays)
              for o in rec.overlays][0]
        assert view[PAGE:2 * PAGE] == hc.render()  # the overlay over the RAM
        assert st.image("vga.vram")[:] == bytes(16 * 8192)  # zero and in-place pages
        devices = st.devices()
        assert [d.path for d in devices] == ["cpu/0", "pci0/0000:00:03.0/virtio-net"]
        assert devices[0].state == CPU_STATE
        path = st.path
        with pytest.raises(KeyError):
            st.image("no such region")
    assert not os.path.exists(path)
    assert ram[:PAGE] == bytes(want[:PAGE])  # the mapping outlives the directory
    img = migstream.region_image(every_record, "pc.ram")
    assert img[:] == bytes(want)


def test_diff_same_and_different(tmp_path):
    a, b = tmp_path / "a.mig", tmp_path / "b.mig"
    write_every_record(a)
    write_every_record(b, compress_level=5, batch_bytes=8192)  # other bytes, same state
    assert a.read_bytes() != b.read_bytes()
    d = migstream.diff(a, b)
    assert d.same and len(d) == 0 and d.count == 0

    ram = guest_ram()
    ram[6 * PAGE + 100] ^= 0xFF  # a data page
    with migstream.Writer(b, writer_name="other") as w:
        w.add_region(0, "pc.ram", len(ram), gpa=0)
        w.pages(0, 0, ram)
        w.device("cpu/0", 0, "x86-cpu", 3, dict(CPU_STATE, rip=0x1234))
    d = migstream.diff(a, b)
    assert not d.same
    pages = [x for x in d if x.kind == DiffKind.PAGES]
    assert any(x.first <= 6 < x.first + x.count and x.state_a == x.state_b == PageState.DATA
               for x in pages)
    state = [x for x in d if x.kind == DiffKind.DEVICE_STATE]
    assert [(x.field, x.a, x.b) for x in state] == [("/rip", 0xFFF0, 0x1234)]
    assert any(x.kind == DiffKind.REGION_ONLY and x.region.name == "vga.vram" for x in d)
    assert any(x.kind == DiffKind.META and x.field == "writer_name" for x in d)
    for x in d:
        assert repr(x).startswith("<Difference")
    few = migstream.diff(a, b, limit=2)
    assert len(few) == 2 and few.truncated and few.count == d.count
    assert d.totals.devices >= 1


def test_diff_of_a_damaged_side(every_record):
    blob = every_record.read_bytes()
    with pytest.raises(migstream.TruncatedError) as e:
        migstream.diff(every_record, io.BytesIO(blob[:-3]))
    assert "stream B" in str(e.value)
