"""The frozen golden streams of tests/compat, read by the package: each
record's Python object says what migstream-dump --json said of it when the
stream was frozen (NAME.dump.jsonl): offsets, checksums, regions, extents,
device state, rounds, overlays, totals, unknown records and map keys."""

import json
import math

import pytest

import migstream
from conftest import COMPAT

STREAMS = sorted(p for d in ("v1.0", "v1.1", "v1.2", "future") for p in (COMPAT / d).glob("*.mig")
                 if p.with_suffix("").name not in ("major2", "required-bit", "must-understand"))
# The migrations in parts of v1.2: NAME.dump.jsonl is the dump of all of
# NAME.*.mig read as one migration.
MIGRATIONS = sorted(p for p in (COMPAT / "v1.2").glob("*.dump.jsonl") if p.name.count(".") == 2)


def jsonish(v):
    """A decoded state as ms_cbor_format() writes it in JSON form: integers
    beyond 2^53 - 1 as strings (docs/OUTPUT.md, "u64 values")."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53 - 1:
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, list):
        return [jsonish(x) for x in v]
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else str(k)): jsonish(x) for k, x in v.items()}
    return v


def hexnum(s):
    return None if s is None else int(s, 16)


def num(s):
    """A u64 as the tools write it: a string ("0x..." or decimal) or a number."""
    if isinstance(s, str):
        return int(s, 16) if s.startswith("0x") else int(s)
    return s


def check(rec, want):
    assert (rec.offset, rec.index, rec.type, rec.flags, rec.length, rec.checksum, rec.known) == (
        want["offset"], want["index"], want["type_code"], want["flags"], want["length"],
        int(want["checksum"], 16), want["known"])
    assert list(rec.unknown_keys) == want.get("unknown_keys", [])
    assert rec.part == want.get("part")
    if not rec.known:
        assert rec.payload.hex().startswith(want["payload_head"])
        return
    t = want["type"]
    if t == "INFO":
        assert (rec.machine, rec.description) == (want["machine"], want["description"])
    elif t == "REGIONS":
        assert [(g.id, g.name, g.gpa, g.size, g.page_size) for g in rec.regions] == [
            (g["id"], g["name"], hexnum(g["gpa"]), num(g["size"]), g["page_size"])
            for g in want["regions"]]
    elif t == "PAGES":
        assert rec.region.id == want["region"] and rec.region.name == want["region_name"]
        assert ["raw", "zstd"][rec.encoding] == want["encoding"]
        assert len(rec.data) == want["decoded_bytes"]
        assert [(x.first, x.count, migstream.PageState(x.state).name, x.arg)
                for x in rec.extents] == [
            (x["first"], x["count"], x["state"], hexnum(x.get("arg")) or 0)
            for x in want["extents"]]
    elif t == "DEVICE":
        assert (rec.path, rec.instance, rec.schema, rec.version, len(rec.state_cbor)) == (
            want["path"], want["instance"], want["schema"], want["version"],
            want["state_size"])
        assert jsonish(rec.state) == want["state"]
        assert json.loads(rec.state_text("json")) == want["state"]
    elif t == "ROUND":
        name = migstream._migstream.name("tracker", rec.tracker) or rec.tracker
        assert (rec.number, name, rec.granularity, rec.dirty, rec.final) == (
            want["round"], want["tracker"], want["granularity"], num(want["dirty"]), want["final"])
    elif t == "OVERLAY":
        assert [(o.gfn, o.kind, o.priority) for o in rec.overlays] == [
            (int(o["gfn"], 16), o["kind_code"], o["priority"]) for o in want["overlays"]]
        for o, w in zip(rec.overlays, want["overlays"]):
            for key in ("vendor", "vp", "sequence", "offset", "frequency"):
                if key in w:
                    got = getattr(o, key)
                    assert got == num(w[key]), key
    elif t == "PART":
        assert (rec.migration_id.hex(), rec.part, rec.count) == (
            want["migration"], want["part_index"], want["part_count"])
    elif t == "END":
        tot = rec.totals
        assert (tot.records, tot.bytes, tot.devices, tot.rounds, tot.overlays) == (
            num(want["records"]), num(want["bytes"]), num(want["devices"]),
            num(want.get("rounds", 0)), num(want.get("overlays", 0)))
        assert {migstream.PageState(s).name: n for s, n in tot.pages.items()} == {
            k: num(n) for k, n in want["pages"].items() if num(n)}
        assert rec.digest == int(want["digest"], 16)


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_stream_reads_as_dumped(path):
    lines = [json.loads(x) for x in path.with_suffix(".dump.jsonl").read_text().splitlines()]
    want = [x for x in lines if x["kind"] == "record"]
    header = next(x for x in lines if x["kind"] == "header")
    with migstream.open(path) as r:
        h = r.header
        assert (h.major, h.minor, h.page_size, h.writer_name, h.writer_version) == (
            header["major"], header["minor"], header["page_size"], header["writer_name"],
            header["writer_version"])
        assert h.required_features == int(header["required_features"], 16)
        n = 0
        for rec in r:  # checked as read: page data is valid until the next record
            check(rec, want[n])
            n += 1
        r.expect_eof()
    assert n == len(want)


@pytest.mark.parametrize("dump", MIGRATIONS, ids=lambda p: p.name.split(".")[0])
def test_golden_migration_in_parts_reads_as_dumped(dump):
    lines = [json.loads(x) for x in dump.read_text().splitlines()]
    want = [x for x in lines if x["kind"] == "record"]
    parts = sorted(dump.parent.glob(dump.name.split(".")[0] + ".*.mig"))
    with migstream.open([str(p) for p in parts]) as r:
        n = 0
        for rec in r:
            check(rec, want[n])
            n += 1
        r.expect_eof()
        assert [p.index for p in r.parts()] == list(range(len(parts)))
    assert n == len(want)
