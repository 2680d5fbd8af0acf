"""Fixtures of the Python package's suite: paths (source tree, build tree,
tools), the QEMU captures of tests/data/qemu decompressed once per run, and
streams written with the package itself (every record type)."""

import os
import pathlib
import shutil
import subprocess

import pytest

import migstream

HERE = pathlib.Path(__file__).resolve().parent
SRC = pathlib.Path(os.environ.get("MIGSTREAM_SOURCE_ROOT") or HERE.parents[1])
BUILD = os.environ.get("MIGSTREAM_BUILD_ROOT")
QEMU_DATA = SRC / "tests" / "data" / "qemu"
COMPAT = SRC / "tests" / "compat"
FUZZ_CORPUS = SRC / "fuzz" / "corpus"
EXAMPLES = SRC / "python" / "examples"

PAGE = 4096


def tool(name):
    """The path of build/tools/migstream-NAME; skips the test without it."""
    if not BUILD:
        pytest.skip("MIGSTREAM_BUILD_ROOT is not set (run through meson test)")
    p = pathlib.Path(BUILD) / "tools" / f"migstream-{name}"
    if not p.exists():
        pytest.skip(f"{p} is not built (-Dtools=false)")
    return str(p)


@pytest.fixture(scope="session")
def qemu_capture(tmp_path_factory):
    """qemu_capture(NAME) -> [main, channel...]: the capture NAME of
    tests/data/qemu and its multifd channels, decompressed."""
    if not migstream._migstream.HAVE_QEMU:
        pytest.skip("the library is built without its QEMU module")
    zstd = shutil.which("zstd")
    if not zstd:
        pytest.skip("the zstd program is not installed")
    out = tmp_path_factory.mktemp("qemu")

    def get(name):
        main = out / f"{name}.qemu"
        if not main.exists():
            for z in [QEMU_DATA / f"{name}.qemu.zst"] + sorted(QEMU_DATA.glob(f"{name}.chan*.qemu.zst")):
                subprocess.run([zstd, "-qdf", str(z), "-o", str(out / z.name[:-4])], check=True)
        return [main] + sorted(out.glob(f"{name}.chan*.qemu"))

    return get


def qemu_names():
    """The capture names of tests/data/qemu."""
    return sorted(p.name[:-len(".qemu.zst")] for p in QEMU_DATA.glob("*.qemu.zst")
                  if ".chan" not in p.name)


# Pages of a small guest with something in each page state.
def guest_ram(pages=64):
    ram = bytearray(pages * PAGE)
    for p in range(0, pages, 3):  # data pages with their own pattern
        ram[p * PAGE:(p + 1) * PAGE] = bytes((p * 7 + i) & 0xFF for i in range(PAGE))
    if pages > 5:
        ram[5 * PAGE:6 * PAGE] = b"\xcc" * PAGE  # a FILL page (with Feature.FILL)
    return ram


ALL_FEATURES = (migstream.Feature.FILL | migstream.Feature.DISCARDED |
                migstream.Feature.IN_PLACE | migstream.Feature.OVERLAYS)

CPU_STATE = {"rip": 0xFFF0, "rflags": 2, "regs": list(range(16)), "name": "vcpu0",
             "fpu": b"\x00\x01" * 8, "halted": False, "pending": None, "tsc_khz": 2.5e6,
             "neg": -(1 << 40), "nested": {"a": [1, {"b": [2.0]}], 7: "int key"}}


def write_every_record(target, **options):
    """Writes a stream holding every record type through migstream.Writer:
    INFO, REGIONS, ROUND, PAGES (DATA, ZERO, FILL, DISCARDED, IN_PLACE),
    OVERLAY (each kind), DEVICE, a private-use record, END. Returns the
    totals."""
    ram = guest_ram()
    with migstream.Writer(target, writer_name="pytest", writer_version="1.0",
                          machine="pc-test", description="every record type",
                          features=ALL_FEATURES, **options) as w:
        w.add_region(0, "pc.ram", len(ram), gpa=0)
        w.add_region(7, "vga.vram", 16 * 8192, page_size=8192)
        w.round(0)
        w.pages(0, 0, ram)
        w.zero_pages(7, 0, 16)
        w.round(1, tracker=migstream.Tracker.BITMAP, granularity=4096, dirty=4)
        w.discard(0, 10, 2)
        w.fill_pages(0, 20, 3, 0xDEADBEEF)
        w.in_place(7, 4, 2, 0x100000)
        w.pages(0, 3, bytes(PAGE))  # page 3 becomes zero
        w.round(2, tracker=migstream.Tracker.PML, granularity=4096, final=True)
        w.overlay(gfn=1, kind=migstream.OverlayKind.HYPERCALL, vendor=1)
        w.overlay(migstream.Overlay(2, migstream.OverlayKind.REFERENCE_TSC,
                                    frequency=2_000_000_000, offset=-5))
        w.overlay(migstream.Overlay(2, migstream.OverlayKind.SYNIC_MESSAGE, vp=0,
                                    slots={3: bytes([1, 2, 3, 4, 16]) + bytes(251)}))
        w.overlay(gfn=4, kind=migstream.OverlayKind.REFERENCE_TSC, sequence=3, scale=1 << 60)
        w.device("cpu/0", 0, "x86-cpu", 3, CPU_STATE)
        w.device("pci0/0000:00:03.0/virtio-net", 0, "virtio-net", 1,
                 cbor=migstream.cbor_encode({"mac": b"\x52\x54\x00\x12\x34\x56"}))
        w.record(0x8001, b"private bytes")
    return w.totals


@pytest.fixture
def every_record(tmp_path):
    """A file written by write_every_record()."""
    path = tmp_path / "every.mig"
    write_every_record(path)
    return path
