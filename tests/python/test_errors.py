"""Failures as exceptions: one class per status, each carrying the status,
the library's message, the byte offset and the record index; damaged
streams; errors of the inputs."""

import io
import os

import pytest

import migstream
from conftest import COMPAT, tool, write_every_record


def read_all(src, **kw):
    with migstream.open(src, **kw) as r:
        return list(r)


def record_offsets(blob):
    with migstream.open(blob) as r:
        return [(rec.offset, rec.length, rec.type) for rec in r]


def test_exception_classes():
    assert issubclass(migstream.ChecksumError, migstream.Error)
    assert issubclass(migstream.InvalidArgumentError, ValueError)
    assert issubclass(migstream.CborError, ValueError)
    assert issubclass(migstream.IoError, OSError)
    assert issubclass(migstream.OutOfMemoryError, MemoryError)
    statuses = {cls.status for cls in (
        migstream.OutOfMemoryError, migstream.InvalidArgumentError, migstream.IoError,
        migstream.TruncatedError, migstream.NotAStreamError, migstream.VersionError,
        migstream.FeatureError, migstream.ChecksumError, migstream.CorruptError,
        migstream.UnknownRecordError, migstream.LimitError, migstream.StateError,
        migstream.CborError, migstream.CompressionError)}
    assert statuses == set(range(-14, 0))
    e = migstream.ChecksumError("made by hand")
    assert (e.status, e.offset, e.record) == (-8, None, None)


def test_truncated_everywhere(every_record):
    blob = every_record.read_bytes()
    recs = record_offsets(blob)
    cuts = sorted({0, 1, 50, 111, 112, 113} | {o for o, _, _ in recs} |
                  {o + 16 + n // 2 for o, n, _ in recs} | {len(blob) - 1})
    for cut in cuts:
        with pytest.raises(migstream.Error) as e:
            read_all(blob[:cut])
        err = e.value  # an empty input, or a part of the magic, too: a truncated stream
        assert isinstance(err, migstream.TruncatedError), (cut, err)
        assert err.status == -4 and err.offset <= cut and err.message in str(err)
        if cut < 112:
            assert err.record is None  # the preamble
        else:  # the record that was cut, or the one whose header is missing
            last = max([i for i, (o, _, _) in enumerate(recs) if o < cut], default=-1)
            assert err.record in (last, last + 1), (cut, err)


def test_flipped_byte_names_the_record(every_record):
    blob = bytearray(every_record.read_bytes())
    recs = record_offsets(bytes(blob))
    for index, (off, length, rtype) in enumerate(recs):
        damaged = bytearray(blob)
        damaged[off + 16 + length // 2] ^= 0x40  # in the payload
        with pytest.raises(migstream.Error) as e:
            read_all(bytes(damaged))
        err = e.value
        assert isinstance(err, (migstream.ChecksumError, migstream.CorruptError,
                                migstream.CborError)), err
        assert err.record == index, (index, rtype, err)
        assert off <= err.offset < off + 16 + length, err
        assert "record %d" % index in err.message


def test_offsets_agree_with_the_validator(every_record, tmp_path):
    validate = tool("validate")
    import subprocess
    blob = bytearray(every_record.read_bytes())
    off, length, _ = record_offsets(bytes(blob))[3]
    blob[off + 20] ^= 1
    bad = tmp_path / "bad.mig"
    bad.write_bytes(blob)
    with pytest.raises(migstream.ChecksumError) as e:
        read_all(bad)
    out = subprocess.run([validate, str(bad)], capture_output=True, text=True).stdout
    assert "record %d " % e.value.record in out
    assert "byte %d" % e.value.offset in out or "at byte %d" % off in out


def test_failures_are_sticky(every_record):
    blob = every_record.read_bytes()
    r = migstream.open(blob[:-5])
    with pytest.raises(migstream.TruncatedError) as first:
        list(r)
    with pytest.raises(migstream.TruncatedError) as again:
        r.next_record()
    assert str(first.value) == str(again.value)
    assert first.value.offset == again.value.offset


def test_not_a_stream(tmp_path):
    p = tmp_path / "text"
    p.write_bytes(b"hello, world\n" * 10)
    with pytest.raises(migstream.NotAStreamError) as e:  # open() reads the preamble
        migstream.open(p)
    assert "magic" in str(e.value) and e.value.offset == 0 and e.value.record is None
    with pytest.raises(migstream.NotAStreamError) as e:  # among several inputs
        migstream.open([p, tmp_path / "text"])
    assert "not a migration stream" in str(e.value)
    p.write_bytes(b"")
    with pytest.raises(migstream.TruncatedError) as e:
        migstream.open(p)
    assert "empty" in str(e.value)


def test_input_errors(tmp_path, every_record):
    with pytest.raises(FileNotFoundError):
        migstream.open(tmp_path / "missing")
    with pytest.raises(migstream.IoError) as e:  # open(2) takes a directory; read(2) fails
        read_all(tmp_path)
    assert "Is a directory" in str(e.value) or "EISDIR" in str(e.value) or e.value.status == -3
    with pytest.raises(TypeError):
        migstream.open(3.5)
    with pytest.raises(ValueError):
        migstream.open([])
    with pytest.raises(ValueError):
        migstream.open(-1)
    with pytest.raises(migstream.InvalidArgumentError) as e:  # two main inputs
        migstream.open([every_record, every_record])
    assert "both main inputs" in str(e.value)
    with pytest.raises(migstream.InvalidArgumentError):
        migstream.open(every_record, format="no-such-format")


def test_a_file_object_failure_is_the_cause(every_record):
    blob = every_record.read_bytes()

    class Flaky(io.RawIOBase):
        def __init__(self):
            self.pos = 0

        def readable(self):
            return True

        def readinto(self, b):
            if self.pos > 3000:
                raise ConnectionResetError("peer went away")
            n = min(len(b), 1000, len(blob) - self.pos)
            b[:n] = blob[self.pos:self.pos + n]
            self.pos += n
            return n

    with pytest.raises(migstream.IoError) as e:
        read_all(Flaky())
    assert isinstance(e.value.__cause__, ConnectionResetError)
    assert e.value.record is not None


def test_keyboard_interrupt_passes_through(every_record):
    class Interrupted:
        def readinto(self, b):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_all(Interrupted())


@pytest.mark.parametrize("name,cls", [
    ("major2", migstream.VersionError),
    ("required-bit", migstream.FeatureError),
    ("must-understand", migstream.UnknownRecordError),
])
def test_refused_future_streams(name, cls):
    with pytest.raises(cls) as e:
        read_all(COMPAT / "future" / f"{name}.mig")
    assert e.value.status == cls.status


def test_keep_going_collects_problems(every_record):
    blob = bytearray(every_record.read_bytes())
    recs = record_offsets(bytes(blob))
    index = next(i for i, (_, _, t) in enumerate(recs) if t == migstream.RecordType.DEVICE)
    off, length, _ = recs[index]
    blob[off + 16 + length - 1] ^= 0x01  # a checksum mismatch in a DEVICE record
    with pytest.raises(migstream.ChecksumError):
        read_all(bytes(blob))
    with migstream.open(bytes(blob), keep_going=True) as r:
        got = list(r)
        problems = r.problems
    assert got[-1].type == migstream.RecordType.END
    assert [p.record for p in problems] == [index]
    assert problems[0].status == migstream.ChecksumError.status
    assert got[index].status == migstream.ChecksumError.status
    assert "Problem(" in repr(problems[0])


def test_writer_errors_are_sticky(tmp_path):
    w = migstream.Writer(tmp_path / "x.mig")
    w.add_region(0, "ram", 8192)
    with pytest.raises(migstream.InvalidArgumentError) as e:
        w.add_region(0, "again", 8192)  # a duplicate id
    assert "0" in str(e.value)
    with pytest.raises(migstream.InvalidArgumentError):
        w.pages(0, 0, bytes(8192))
    with pytest.raises(migstream.InvalidArgumentError):
        w.finish()
    w.close()
    with pytest.raises(ValueError):
        w.flush()


def test_writer_failure_in_write_is_the_cause():
    def broken(chunk):
        raise BrokenPipeError("the socket closed")

    w = migstream.Writer(broken)
    w.add_region(0, "ram", 4096)
    w.pages(0, 0, b"\x01" * 4096)
    with pytest.raises(migstream.IoError) as e:
        w.finish()
    assert isinstance(e.value.__cause__, BrokenPipeError)
    w.close()


def test_dirty_rejects_short_buffers():
    w = migstream.Writer(io.BytesIO())
    w.add_region(0, "ram", 128 * 4096)
    with pytest.raises(migstream.InvalidArgumentError):
        w.dirty(0, bytes(8), 4096, bytes(128 * 4096))  # 2 words needed
    with pytest.raises(migstream.InvalidArgumentError):
        w.dirty(0, bytes(16), 4096, bytes(4096))
    with pytest.raises(migstream.InvalidArgumentError):
        w.dirty(0, bytes(16), 3000, bytes(128 * 4096))
    with pytest.raises(migstream.InvalidArgumentError):
        w.pages(0, 0, bytes(100))  # not whole pages
    with pytest.raises(migstream.InvalidArgumentError):
        w.pages(9, 0, bytes(4096))  # no such region
    w.close()


def test_a_writer_left_by_an_exception_leaves_no_end(tmp_path):
    p = tmp_path / "cut.mig"
    with pytest.raises(RuntimeError):
        with migstream.Writer(p) as w:
            w.add_region(0, "ram", 4096)
            w.pages(0, 0, b"\x02" * 4096)
            w.flush()
            raise RuntimeError("the VMM gave up")
    with pytest.raises(migstream.TruncatedError):
        read_all(p)
    os.unlink(p)
    write_every_record(p)
    read_all(p)


def test_io_errors_carry_errno():
    """A pipe whose reader has gone: EPIPE (Python ignores SIGPIPE)."""
    import errno
    rfd, wfd = os.pipe()
    os.close(rfd)
    try:
        w = migstream.Writer(wfd)
        w.add_region(0, "ram", 4096)
        w.pages(0, 0, b"\x01" * 4096)
        with pytest.raises(migstream.IoError) as e:
            w.finish()
        assert e.value.errno == errno.EPIPE and e.value.strerror
        w.close()
    finally:
        os.close(wfd)
