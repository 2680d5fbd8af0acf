"""Other VMMs' streams read directly by migstream.open(): every QEMU capture
of tests/data/qemu with its multifd channels, QEMU's own counters, device
state decoded, the same state as the stream migstream-import makes; and
the libvirt save images of tests/data/libvirt."""

import io
import json
import subprocess

import pytest

import migstream
from migstream import PageState
from conftest import QEMU_DATA, qemu_names, tool

NAMES = qemu_names()


def apply(path_list):
    """The final memory of each region, by applying the records in Python:
    {region name: bytearray}."""
    mem = {}
    with migstream.open(path_list) as r:
        assert r.format in ("qemu", "libvirt")
        for rec in r:
            if isinstance(rec, migstream.Regions):
                for g in rec.regions:
                    mem[g.name] = bytearray(g.size)
            elif isinstance(rec, migstream.Pages):
                m = mem[rec.region.name]
                ps = rec.page_size
                for x, data in rec.iter_extents():
                    lo, hi = x.first * ps, (x.first + x.count) * ps
                    if data is not None:
                        m[lo:hi] = data
                    elif x.state in (PageState.ZERO, PageState.DISCARDED):
                        m[lo:hi] = bytes(hi - lo)
                    else:
                        raise AssertionError(f"QEMU sends no {x.state} pages")
    return mem


@pytest.mark.parametrize("name", NAMES)
def test_every_capture_reads_to_its_end(qemu_capture, name):
    inputs = qemu_capture(name)
    counts = {}
    with migstream.open(inputs) as r:
        assert r.format == "qemu"
        assert r.header.writer_name == "qemu"
        last = None
        for rec in r:
            counts[rec.type] = counts.get(rec.type, 0) + 1
            last = rec
            if isinstance(rec, migstream.Device):
                rec.state  # decodes
        assert isinstance(last, migstream.End)
        assert any(g.name == "pc.ram" for g in r.regions)
    stats = json.loads((QEMU_DATA / f"{name}.query-migrate.json").read_text())
    if "compression" in stats:
        return  # QEMU 7.2's compress threads count their pages otherwise: not compared
    ram = stats["ram"]
    pages = last.totals.pages
    extra = stats.get("xbzrle-cache", {}).get("pages", 0)
    # QEMU's own counters: "duplicate" zero pages, "normal" pages (and
    # XBZRLE or compressed ones), every copy counted.
    assert pages.get(PageState.ZERO, 0) == ram["duplicate"], pages
    assert pages.get(PageState.DATA, 0) == ram["normal"] + extra, pages
    assert counts[migstream.RecordType.DEVICE] == last.totals.devices


def test_multifd_channels_in_any_order(qemu_capture):
    main, *chans = qemu_capture("pc-multifd-live")
    assert len(chans) == 3
    a = apply([main] + chans)
    b = apply(list(reversed(chans)) + [main])
    assert a == b
    with st(main, chans) as final:
        for name, m in a.items():
            assert final.image(name)[:] == bytes(m), name


def st(main, chans):
    return migstream.final_state([main] + chans)


def test_multifd_channels_as_file_objects(qemu_capture):
    main, *chans = qemu_capture("q35-multifd-zstd")
    blobs = [io.BytesIO(p.read_bytes()) for p in chans]
    a = apply([main.read_bytes()] + blobs)
    assert a == apply([main] + chans)


def test_a_missing_channel_is_named(qemu_capture):
    main, *chans = qemu_capture("pc-multifd-live")
    with pytest.raises(migstream.Error) as e:
        apply([main] + chans[:-1])
    assert "channel" in str(e.value)
    assert e.value.offset is not None


def test_xbzrle_live_memory_is_the_replay_image(qemu_capture):
    inputs = qemu_capture("pc-xbzrle-live")
    mem = apply(inputs)
    with migstream.final_state(inputs) as final:
        for name, m in mem.items():
            assert final.image(name)[:] == bytes(m), name


def test_device_state_decoded_from_the_trailer(qemu_capture):
    devices = {}
    for rec in migstream.open(qemu_capture("q35-devices")):
        if isinstance(rec, migstream.Device):
            devices[(rec.path, rec.instance)] = rec.state
    timer = devices[("timer", 0)]
    assert isinstance(timer["raw"], bytes)
    assert "cpu_ticks_offset" in timer["fields"]


def test_a_capture_and_its_import_leave_the_same_state(qemu_capture, tmp_path):
    inputs = qemu_capture("pc-multifd-live")
    out = tmp_path / "imported.mig"
    subprocess.run([tool("import"), "qemu", "-o", str(out)] + [str(p) for p in inputs],
                   check=True, capture_output=True)
    d = migstream.diff(inputs, out)  # metadata: what describes the guest only
    assert d.same, d.differences
    assert migstream.open(out).format == "migstream"


def test_a_damaged_capture_names_the_byte(qemu_capture):
    main = qemu_capture("pc-paused")[0]
    blob = bytearray(main.read_bytes())
    blob[len(blob) // 2:] = b"\xff" * (len(blob) - len(blob) // 2)
    with pytest.raises(migstream.Error) as e:
        apply([bytes(blob)])
    assert e.value.offset is not None and e.value.offset <= len(blob)


LIBVIRT_DATA = QEMU_DATA.parent / "libvirt"
PATTERN = bytes((7 * i + 3) % 256 for i in range(8192))  # tests/data/libvirt/README.md


@pytest.fixture(scope="session")
def libvirt_image(tmp_path_factory):
    if "libvirt" not in migstream.formats():
        pytest.skip("the library is built without its libvirt module")
    import shutil
    zstd = shutil.which("zstd")
    if not zstd:
        pytest.skip("the zstd program is not installed")
    out = tmp_path_factory.mktemp("libvirt")

    def get(name):
        p = out / f"{name}.libvirt"
        if not p.exists():
            subprocess.run([zstd, "-qdf", str(LIBVIRT_DATA / f"{name}.libvirt.zst"), "-o",
                            str(p)], check=True)
        return p

    return get


@pytest.mark.parametrize("name", ["q35-raw", "q35-gzip", "q35-bzip2", "q35-xz", "q35-zstd"])
def test_libvirt_save_images(libvirt_image, name):
    """Another format the build reads, through the same open(): the guest's
    known pattern at 0x100000 of pc.ram, whatever the compression."""
    p = libvirt_image(name)
    with migstream.open(p) as r:
        assert r.format == "libvirt"
        assert r.header.writer_name == "libvirt"
    mem = apply([p])
    assert mem["pc.ram"][0x100000:0x100000 + len(PATTERN)] == PATTERN
    assert migstream.region_image(p, "pc.ram")[0x100000:0x102000] == PATTERN


def test_libvirt_lzop_is_refused_with_a_way_out(libvirt_image):
    with pytest.raises(migstream.FeatureError) as e:
        migstream.open(libvirt_image("q35-lzop"))
    assert "lzop" in str(e.value) and e.value.offset == 28
