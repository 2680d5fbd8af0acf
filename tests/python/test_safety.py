"""Streams are untrusted input: the package raises migstream.Error on any
damage and never crashes; views of page data never point at freed memory;
memory does not grow from one stream to the next; a reader is used by one
thread at a time, readers on several threads run side by side."""

import io
import os
import random
import resource
import threading

import pytest

import migstream
from conftest import FUZZ_CORPUS, PAGE, write_every_record


def drain(src, **kw):
    with migstream.open(src, **kw) as r:
        for rec in r:
            if isinstance(rec, migstream.Pages):
                bytes(rec.data[:64])
                list(rec.extents)
            elif isinstance(rec, migstream.Device):
                try:
                    rec.state
                except migstream.CborError:
                    pass
        return r.problems


def corpus(name):
    d = FUZZ_CORPUS / name
    return sorted(d.iterdir()) if d.is_dir() else []


@pytest.mark.parametrize("target", ["fuzz_reader", "fuzz_replay", "fuzz_records",
                                    "fuzz_import_qemu"])
def test_fuzz_corpora_raise_errors_only(target):
    files = corpus(target)
    if not files:
        pytest.skip(f"no corpus for {target}")
    for f in files:
        data = f.read_bytes()
        for keep_going in (False, True):
            try:
                drain(data, keep_going=keep_going)
            except migstream.Error as e:
                assert e.status < 0 and isinstance(e.message, str)


def test_mutations_raise_errors_only(every_record):
    blob = every_record.read_bytes()
    rng = random.Random(20240601)
    for i in range(300):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(b))
            b[k] = rng.randrange(256) if i % 2 else b[k] ^ (1 << rng.randrange(8))
        if i % 7 == 0:
            del b[rng.randrange(len(b)):]
        for keep_going in (False, True):
            try:
                drain(bytes(b), keep_going=keep_going)
            except migstream.Error:
                pass


def test_views_outlive_records_and_readers(every_record):
    """Slices kept past the next record and past close() stay readable (the
    reader's allocator keeps their block), whatever they show."""
    kept = []
    r = migstream.open(every_record, format="migstream")
    for rec in r:
        if isinstance(rec, migstream.Pages) and len(rec.data):
            kept.append(rec.data[: PAGE])
    r.close()
    del r
    for v in kept:
        assert len(bytes(v)) == PAGE


def test_numpy_views_outlive_the_reader(every_record):
    np = pytest.importorskip("numpy")
    arrays = []
    with migstream.open(every_record) as r:
        for rec in r:
            if isinstance(rec, migstream.Pages) and len(rec.data):
                arrays.append(np.frombuffer(rec.data, dtype=np.uint8))
    assert all(a.sum() >= 0 for a in arrays)


def under_asan():
    return "asan" in os.environ.get("LD_PRELOAD", "")


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_memory_does_not_grow_over_streams(tmp_path):
    """Read, write, replay and diff the same streams many times: the peak
    RSS settles (a leak of the extension would grow it by the stream's size
    each time)."""
    if under_asan():
        pytest.skip("ASan keeps freed memory in quarantine: RSS says nothing here")
    p = tmp_path / "s.mig"
    write_every_record(p)
    big = tmp_path / "big.mig"
    ram = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    with migstream.Writer(big) as w:
        w.add_region(0, "ram", len(ram))
        w.pages(0, 0, ram)

    def round_():
        drain(p)
        drain(big)
        buf = io.BytesIO()
        write_every_record(buf)
        migstream.diff(p, big)
        with migstream.final_state(big) as st:
            st.image(0)[:16]
        for bad in (p.read_bytes()[:-9], b"MIGSTRM\x00" + bytes(200)):
            try:
                drain(bad)
            except migstream.Error:
                pass

    for _ in range(5):
        round_()
    before = rss_kib()
    for _ in range(40):
        round_()
    grown = rss_kib() - before
    assert grown < 8 * 1024, f"peak RSS grew by {grown} KiB over 40 rounds"


def test_one_reader_one_thread_at_a_time(tmp_path):
    class Slow(io.RawIOBase):
        def __init__(self, blob, started):
            self.f = io.BytesIO(blob)
            self.started = started
            self.release = threading.Event()

        def readable(self):
            return True

        def readinto(self, b):
            if self.f.tell() > 200:
                self.started.set()
                self.release.wait(10)
            return self.f.readinto(b)

    p = tmp_path / "s.mig"
    write_every_record(p)
    started = threading.Event()
    src = Slow(p.read_bytes(), started)
    r = migstream.open(src)
    errors = []
    t = threading.Thread(target=lambda: errors.append(list(r)))
    t.start()
    assert started.wait(10)
    with pytest.raises(RuntimeError):
        r.next_record()
    with pytest.raises(RuntimeError):
        r.close()
    src.release.set()
    t.join()
    assert errors and errors[0][-1].type == migstream.RecordType.END


def test_readers_on_several_threads(tmp_path):
    p = tmp_path / "s.mig"
    write_every_record(p, compress_level=3)
    want = [(rec.type, rec.checksum) for rec in migstream.open(p)]
    got = [None] * 4

    def run(i):
        got[i] = [(rec.type, rec.checksum) for rec in migstream.open(p)]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == [want] * 4
