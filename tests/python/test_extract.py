"""python/examples/extract.py (analyze-migration.py -x done with the
package) on real QEMU captures: each RAM block's file is, byte for byte,
the image the library's replay writes for it."""

import json
import os
import subprocess
import sys

import pytest

import migstream
from conftest import EXAMPLES, write_every_record

CAPTURES = ["pc-xbzrle-live", "pc-multifd-live", "q35-multifd-zstd", "q35-compress",
            "pc-paused"]


def run(inputs, out):
    return subprocess.run([sys.executable, str(EXAMPLES / "extract.py"), "-o", str(out)] +
                          [str(p) for p in inputs], capture_output=True, text=True)


def check_against_replay(inputs, out):
    with migstream.final_state(inputs) as st:
        for g in st.regions:
            path = out / g.name.lstrip("/")
            assert path.stat().st_size == g.size, g.name
            with open(path, "rb") as f:
                assert f.read() == st.image(g)[:], g.name
        return len(st.regions)


@pytest.mark.parametrize("name", CAPTURES)
def test_extract_matches_the_replay_images(qemu_capture, tmp_path, name):
    inputs = qemu_capture(name)
    out = tmp_path / "out"
    p = run(inputs, out)
    assert p.returncode == 0, p.stderr
    listed = p.stdout.split()
    assert str(out / "pc.ram") in listed
    assert check_against_replay(inputs, out) == len(listed)
    state = json.loads((out / "state.json").read_text())
    assert any(k.startswith("timer/") for k in state)


def test_a_later_zero_copy_clears_a_page(tmp_path):
    """What analyze-migration.py -x gets wrong on live streams: a page sent
    with data, then as a zero page in a later pass, must end up zero."""
    src = tmp_path / "live.mig"
    with migstream.Writer(src) as w:
        w.add_region(0, "pc.ram", 16 * 4096)
        w.round(0)
        w.pages(0, 0, b"\x11" * (16 * 4096))
        w.round(1)
        w.pages(0, 4, bytes(3 * 4096))
    out = tmp_path / "out"
    assert run([src], out).returncode == 0
    ram = (out / "pc.ram").read_bytes()
    assert ram == b"\x11" * (4 * 4096) + bytes(3 * 4096) + b"\x11" * (9 * 4096)
    check_against_replay([src], out)


def test_block_names_stay_inside_the_output(tmp_path):
    src = tmp_path / "names.mig"
    with migstream.Writer(src) as w:
        for i, name in enumerate(["../escape", "/abs/name", "a/./b", "%2E%2E"]):
            w.add_region(i, name, 4096)
            w.pages(i, 0, bytes([i + 1]) * 4096)
    out = tmp_path / "out"
    p = run([src], out)
    assert p.returncode == 0, p.stderr
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    assert files == sorted(["%2E%2E/escape", "abs/name", "a/b", "%252E%252E", "state.json"])
    assert not (tmp_path / "escape").exists()


def test_a_damaged_stream_stops_with_the_offset(tmp_path):
    src = tmp_path / "s.mig"
    write_every_record(src)
    blob = bytearray(src.read_bytes())
    blob[300] ^= 1
    src.write_bytes(blob)
    p = run([src], tmp_path / "out")
    assert p.returncode == 1
    assert "byte" in p.stderr and "record" in p.stderr
