#!/usr/bin/env python3
"""The schemas of docs/schemas/ accept what the tools print and reject
wrong shapes: the old spellings ("type" as the tag, lower-case page
states, u64 values as numbers, manifest_version), unknown kinds, missing
members. Exits 77 (skipped) without python3-jsonschema.

    test-schemas.py SCHEMAS_DIR
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed")
    sys.exit(77)

HEAD = {"kind": "output", "tool": "migstream-diff", "schema_version": 1}
MEM = {"kind": "memory", "region": 0, "region_name": "pc.ram", "first_page": 5, "last_page": 6,
       "pages": 2, "a": "ZERO", "b": "DATA"}
REGION = {"id": 0, "name": "pc.ram", "gpa": "0x0", "size": "4194304", "page_size": 4096,
          "pages": 1024}
HEADER = {"kind": "header", "format": "1.1", "page_size": 4096, "regions": [REGION]}
END = {"kind": "record", "offset": 1348, "index": 9, "type": "END", "type_code": 5, "flags": 1,
       "length": 11, "checksum": "0xddf5d8862b21f4d9", "known": True, "records": "9",
       "bytes": "1348", "pages": {"DATA": "0", "ZERO": "0"}, "devices": "8",
       "digest": "0xddf5d8862b21f4d9"}
PROBLEM = {"kind": "problem", "severity": "error", "check": "checksum", "status": "MS_ECHECKSUM",
           "offset": 212, "record": 2, "message": "m", "concerns": None}
MANIFEST = {"schema_version": 2, "format": "1.0", "page_size": 4096, "writer_name": "w",
            "writer_version": "1", "machine": None, "description": None, "digest": "0x1",
            "totals": {"records": "7", "bytes": "100", "pages": {"DATA": "1", "ZERO": "2"},
                       "devices": "0"},
            "skipped_records": 0, "regions": [dict(REGION, final={"DATA": 1, "ZERO": 2,
                                                                 "missing": 1021},
                                                   file="region-0.img")], "devices": []}

IMPORT_XEN = {"kind": "stats", "format": "xen", "libxl": False, "image_version": 3,
              "domain_type": "PV", "xen_major": 4, "xen_minor": 17, "records": "19",
              "page_data_records": "2", "page_types": {"NOTAB": "1002", "XTAB": "20"},
              "rounds": "2", "checkpoints": "0", "devices": "19", "optional_records": "0",
              "bytes_read": "4227656"}
EXPORT_QEMU = {"kind": "stats", "format": "qemu", "machine": None, "ram_blocks": 6,
               "ram_bytes": "34086912",
               "pages": {"DATA": "53", "ZERO": "8269", "FILL": "0", "DISCARDED": "0"},
               "ram_parts": "1", "devices": "29", "device_records": "29",
               "libvirt_records": "0", "records": "39", "bytes_read": "293339",
               "bytes_written": "324763"}


def changed(doc, **kw):
    d = json.loads(json.dumps(doc))
    for k, v in kw.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


CASES = [  # schema, document, whether it fits
    ("diff", HEAD, True),
    ("diff", changed(HEAD, schema_version=2), False),
    ("diff", MEM, True),
    ("diff", changed(MEM, kind=None, type="memory"), False),
    ("diff", changed(MEM, a="zero"), False),
    ("diff", changed(MEM, region="pc.ram"), False),
    ("diff", changed(MEM, kind="mystery"), False),
    ("diff", {"kind": "region-only", "side": "b", "region": 2, "region_name": "x",
              "size": "8192", "page_size": 4096, "gpa": None,
              "pages": {"DATA": 1, "ZERO": 1, "missing": 0}}, True),
    ("diff", {"kind": "region-only", "side": "b", "region": 2, "region_name": "x",
              "size": 8192, "page_size": 4096, "gpa": None,
              "pages": {"DATA": 1, "ZERO": 1, "missing": 0}}, False),
    ("dump", HEADER, True),
    ("dump", changed(HEADER, regions=[changed(REGION, size=4194304)]), False),
    ("dump", changed(HEADER, regions=[changed(REGION, gpa=0)]), False),
    ("dump", END, True),
    ("dump", changed(END, records=9), False),
    ("dump", changed(END, pages={"data": "0", "zero": "0"}), False),
    ("dump", {"kind": "error", "status": "MS_ECORRUPT", "offset": 3, "record": None,
              "message": "m"}, True),
    ("dump", {"kind": "error", "status": "MS_ECORRUPT", "offset": 3, "message": "m"}, False),
    ("dump", {"kind": "device", "path": "cpu", "instance": 0, "schema": "x", "version": 1,
              "state": {"rip": "18446744071578845184"}}, True),
    ("dump", {"kind": "device", "path": "cpu", "instance": 0, "schema": "x", "version": 1,
              "state": {"rip": 18446744071578845184}}, False),
    ("validate", PROBLEM, True),
    ("validate", changed(PROBLEM, severity="fatal"), False),
    ("validate", changed(PROBLEM, concerns={"device": "cpu", "instance": 0}), False),
    ("validate", changed(PROBLEM, concerns={"path": "cpu", "instance": 0}), True),
    ("compat", {"kind": "input", "side": "old", "type": "streams", "path": "d"}, False),
    ("compat", {"kind": "input", "side": "old", "holds": "streams", "path": "d"}, True),
    ("manifest", MANIFEST, True),
    ("manifest", changed(MANIFEST, schema_version=None, manifest_version=1), False),
    ("manifest", changed(MANIFEST, totals=dict(MANIFEST["totals"], records=7)), False),
    ("manifest", changed(MANIFEST, regions=[changed(MANIFEST["regions"][0], data=1)]), False),
    ("diff", {"kind": "error", "side": "b", "input": "cut.mig", "status": "MS_ETRUNCATED",
              "offset": 40000, "record": 8, "message": "m"}, True),
    ("diff", {"kind": "error", "side": "c", "input": "cut.mig", "status": "MS_ETRUNCATED",
              "offset": 40000, "record": 8, "message": "m"}, False),
    ("diff", {"kind": "summary", "same": True, "partial": True, "metadata": 0, "regions": 0,
              "pages": 0, "ranges": 0, "devices": 0, "overlays": 0}, True),
    ("diff", {"kind": "summary", "same": True, "partial": False, "metadata": 0, "regions": 0,
              "pages": 0, "ranges": 0, "devices": 0, "overlays": 0}, False),
    ("progress", {"kind": "progress", "tool": "migstream-dump", "bytes": 10, "total": 20,
                  "elapsed_s": 0.25}, True),
    ("progress", {"kind": "progress", "tool": "migstream-dump", "bytes": 20, "total": 20,
                  "elapsed_s": 0.5, "done": True}, True),
    ("progress", {"kind": "progress", "tool": "migstream-dump", "bytes": "10",
                  "elapsed_s": 0.25}, False),
    ("progress", {"kind": "progress", "tool": "migstream-dump", "bytes": 10}, False),
    ("progress", {"kind": "progress", "tool": "migstream-dump", "bytes": 10, "elapsed_s": 1,
                  "done": False}, False),
    ("import", IMPORT_XEN, True),
    ("import", changed(IMPORT_XEN, bytes_read=4227656), False),
    ("import", changed(IMPORT_XEN, page_types={"notab": "1002"}), False),
    ("import", changed(IMPORT_XEN, domain_type=1), False),
    ("import", changed(IMPORT_XEN, kind=None, type="stats"), False),
    ("export", EXPORT_QEMU, True),
    ("export", changed(EXPORT_QEMU, pages={"data": "53", "zero": "8269"}), False),
    ("export", changed(EXPORT_QEMU, pages={"DATA": 53, "ZERO": 8269, "FILL": 0,
                                           "DISCARDED": 0}), False),
    ("export", changed(EXPORT_QEMU, bytes_written=None), False),
    ("export", changed(EXPORT_QEMU, format="vmware"), False),
    ("device-state", {"rip": "18446744071578845184", "a": [1, -2.5, None]}, True),
    ("device-state", {"rip": 18446744071578845184}, False),
    ("device-state", {"neg": -9007199254740992}, False),
]


def main():
    schemas = sys.argv[1]
    failed = 0
    for name, doc, fits in CASES:
        with open(os.path.join(schemas, name + ".schema.json")) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        ok = cls(schema).is_valid(doc)
        if ok != fits:
            failed += 1
            print(f"FAIL {name}: {json.dumps(doc)[:200]} {'rejected' if fits else 'accepted'}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
