#!/usr/bin/env python3
"""Checks the JSON one CLI case produced against docs/schemas/ (run.sh).

    check-json.py [--stderr STDERR] SCHEMAS CASE_DIR STDOUT [UNCHECKED]

- STDOUT: every JSON Lines output in it, from its {"kind":"output",...}
  head to the first line that is not a JSON object (a case's own echo),
  each line checked against the schema of the tool the head names
  (docs/schemas/TOOL.schema.json, TOOL without "migstream-");
- STDERR: every line that is a JSON object with "kind":"progress" (what
  --progress=json writes among a tool's messages) against
  progress.schema.json;
- every manifest.json under CASE_DIR against manifest.schema.json, and
  every device-N.json against device-state.schema.json.
UNCHECKED (the case's NAME.unchecked) lists, one a line, glob patterns of
files under CASE_DIR a case breaks on purpose ("#" starts a comment).
Everywhere, an integer beyond +-(2^53 - 1) is an error (docs/OUTPUT.md,
"u64 values"): JSON parsers that read numbers as doubles would round it.

Prints one line per problem; exits 1 when there was one, 77 when
python3-jsonschema is not installed, else 0.
"""
import fnmatch
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed: JSON outputs not checked")
    sys.exit(77)

EXACT = 2**53 - 1


def big_ints(v, where="$"):
    if isinstance(v, bool):
        return
    if isinstance(v, int) and not -EXACT <= v <= EXACT:
        yield f"{where}: {v} is beyond 2^53 - 1 (must be a string)"
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from big_ints(x, f"{where}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from big_ints(x, f"{where}.{k}")


class Checker:
    def __init__(self, schemas):
        self.dir = schemas
        self.cache = {}
        self.problems = 0
        self.checked = 0

    def validator(self, name):
        if name not in self.cache:
            path = os.path.join(self.dir, name + ".schema.json")
            if not os.path.exists(path):
                self.cache[name] = None
            else:
                with open(path) as f:
                    schema = json.load(f)
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                self.cache[name] = cls(schema)
        return self.cache[name]

    def check(self, name, doc, where):
        self.checked += 1
        for p in big_ints(doc):
            self.fail(f"{where}: {p}")
        v = self.validator(name)
        if v is None:
            self.fail(f"{where}: no schema {name}.schema.json in {self.dir}")
            return
        for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
            path = "".join(f"[{p!r}]" for p in e.path)
            self.fail(f"{where}: {name}.schema.json: {path or 'top level'}: {e.message[:300]}")

    def fail(self, msg):
        self.problems += 1
        print(msg)


def json_lines(path):
    """Each line of @path with its number, and the JSON object it holds
    (None for a line that is no JSON object)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.decode("utf-8", "replace").strip()
            try:
                doc = json.loads(line) if line.startswith("{") else None
            except ValueError:
                doc = None
            yield n, doc if isinstance(doc, dict) else None


def check_stderr(c, path):
    for n, doc in json_lines(path):
        if doc and doc.get("kind") == "progress":
            c.check("progress", doc, f"stderr line {n}")


def main():
    args = sys.argv[1:]
    stderr = None
    if args[:1] == ["--stderr"]:
        stderr, args = args[1], args[2:]
    schemas, case_dir, stdout = args[0:3]
    skip = []
    if len(args) > 3:
        with open(args[3]) as f:
            skip = [x.split("#")[0].strip() for x in f if x.split("#")[0].strip()]
    c = Checker(schemas)
    if stderr:
        check_stderr(c, stderr)
    tool = None
    for n, doc in json_lines(stdout):
        if not doc:
            tool = None  # a line of the case's own: the output ended
            continue
        if doc.get("kind") == "output":
            tool = str(doc.get("tool", "")).removeprefix("migstream-")
        if tool:
            c.check(tool, doc, f"stdout line {n}")
    for top, _, files in os.walk(case_dir):
        for name in sorted(files):
            path = os.path.join(top, name)
            rel = os.path.relpath(path, case_dir)
            if name == "manifest.json":
                schema = "manifest"
            elif name.startswith("device-") and name.endswith(".json"):
                schema = "device-state"
            else:
                continue
            if any(fnmatch.fnmatch(rel, g) for g in skip):
                continue
            try:
                with open(path) as f:
                    doc = json.load(f)
            except ValueError as e:
                c.fail(f"{rel}: not JSON: {e}")
                continue
            c.check(schema, doc, rel)
    sys.exit(1 if c.problems else 0)


if __name__ == "__main__":
    main()
