"""A migration in parts (FORMAT.md section 2.1) from Python: written by one
Writer per part, each part read alone (its PART record, every record's
part), and all parts read as one migration, which leaves the state a single
stream of the same pages leaves."""

import pytest

import migstream
from migstream import Feature, Part, RecordType
from conftest import PAGE, guest_ram, tool

PAGES = 64


def write_parts(tmp_path, count):
    """The guest of guest_ram() over @count parts: round 0 sends every page,
    page p in part p % count; round 1 sends pages 3 and 4 again, in other
    parts than before, so that the later round must win whichever part
    carried it. The CPU's state goes in the last part."""
    ram = guest_ram(PAGES)
    again = bytes([0x5A]) * PAGE
    mid = migstream.new_migration_id()
    assert len(mid) == 16 and mid != migstream.new_migration_id()
    paths = []
    for index in range(count):
        p = tmp_path / f"part{index}.mig"
        with migstream.Writer(str(p), part=(mid, index, count)) as w:
            w.add_region(0, "ram", PAGES * PAGE, gpa=0)
            w.round(0)
            for pg in range(index, PAGES, count):
                w.pages(0, pg, memoryview(ram)[pg * PAGE:(pg + 1) * PAGE])
            w.round(1, final=True)
            for pg in (3, 4):
                if (pg + 1) % count == index:
                    w.pages(0, pg, again)
            if index == count - 1:
                w.device("cpu", 0, "x86-cpu", 1, {"rip": 0xFFFFFFFF81000000})
        paths.append(str(p))
    single = tmp_path / "single.mig"
    with migstream.Writer(str(single)) as w:
        w.add_region(0, "ram", PAGES * PAGE, gpa=0)
        w.round(0)
        w.pages(0, 0, ram)
        w.round(1, final=True)
        w.pages(0, 3, again)
        w.pages(0, 4, again)
        w.device("cpu", 0, "x86-cpu", 1, {"rip": 0xFFFFFFFF81000000})
    return paths, str(single), mid


def test_one_part_alone(tmp_path):
    paths, _, mid = write_parts(tmp_path, 3)
    with migstream.open(paths[1]) as r:
        assert r.header.required_features & Feature.PARTS
        assert (r.header.major, r.header.minor) == (1, 2)
        recs = list(r)
        assert recs[0].type == RecordType.PART
        assert isinstance(recs[0], Part)
        assert (recs[0].migration_id, recs[0].part, recs[0].count) == (mid, 1, 3)
        assert all(rec.part == 1 for rec in recs)
        infos = r.parts()
        assert len(infos) == 1
        assert (infos[0].index, infos[0].count, infos[0].migration_id) == (1, 3, mid)
        assert infos[0].ended


def test_all_parts_read_as_one(tmp_path):
    paths, single, mid = write_parts(tmp_path, 3)
    with migstream.open(list(reversed(paths))) as r:  # any order
        seen = {rec.part for rec in r if rec.type != RecordType.END}
        assert seen == {0, 1, 2}
        infos = r.parts()
        assert [p.index for p in infos] == [0, 1, 2]
        assert all(p.migration_id == mid and p.count == 3 and p.ended for p in infos)
    assert migstream.diff(paths, single).same
    image = migstream.region_image(paths, "ram")
    assert image[3 * PAGE:4 * PAGE] == bytes([0x5A]) * PAGE  # round 1 won
    assert image[:PAGE] == guest_ram(PAGES)[:PAGE]


def test_tools_read_the_parts(tmp_path):
    import subprocess
    paths, single, _ = write_parts(tmp_path, 2)
    assert subprocess.run([tool("validate"), *paths], capture_output=True).returncode == 0
    # a part beside a plain stream makes no stream: refused before reading
    assert subprocess.run([tool("diff"), single, "--with-a", paths[1], paths[0]],
                          capture_output=True).returncode == 2
    out = subprocess.run([tool("diff"), paths[0], *sum([["--with-a", p] for p in paths[1:]], []),
                          single], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_bad_part_arguments(tmp_path):
    with pytest.raises(ValueError):
        migstream.Writer(str(tmp_path / "x.mig"), part=(b"short", 0, 2))
    with pytest.raises(TypeError):
        migstream.Writer(str(tmp_path / "x.mig"), part=(bytes(16), 0))
