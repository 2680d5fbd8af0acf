#!/usr/bin/env python3
"""Checks what a tool wrote on standard error with --progress=json, for the
CLI cases (docs/OUTPUT.md, "Progress"), and prints what does not depend on
timing, for the case's expected output:

    progress.py TOOL FILE

FILE holds the tool's standard error: JSON Lines {"kind":"progress",...}
among its messages ("PROG: ..."). Checked: every progress line names TOOL;
bytes never go down, total never changes, elapsed_s never goes down; lines
before the last are at least 0.25 s apart (at most 4 a second); exactly
one line has "done": true, and it is the last; a run of 0.3 s or more has
lines before it. Printed, in their order: each message as "message: ...",
and the last line without elapsed_s. Exits 1 after printing what failed.
"""
import json
import sys


def main():
    tool, path = sys.argv[1:3]
    lines, bad = [], []
    with open(path) as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if not raw.startswith("{"):
                print("message:", raw)
                continue
            doc = json.loads(raw)
            if doc.get("kind") != "progress" or doc.get("tool") != tool:
                bad.append(f"not a progress line of {tool}: {raw}")
            lines.append(doc)
            if doc.get("done"):  # in its place among the messages
                final = dict(doc)
                final.pop("elapsed_s", None)
                print("last:", json.dumps(final, separators=(",", ":")))
    if not lines:
        bad.append("no progress line")
    for prev, cur in zip(lines, lines[1:]):
        if cur["bytes"] < prev["bytes"]:
            bad.append(f"bytes went down: {prev['bytes']} then {cur['bytes']}")
        if cur.get("total") != prev.get("total"):
            bad.append("total changed")
        if cur["elapsed_s"] < prev["elapsed_s"]:
            bad.append("elapsed_s went down")
    early = [d for d in lines if not d.get("done")]
    last = 0.0
    for d in early:
        if d["elapsed_s"] - last < 0.249:
            bad.append(f"more than 4 lines a second: {d['elapsed_s']} after {last}")
        last = d["elapsed_s"]
    done = [d for d in lines if d.get("done")]
    if len(done) != 1 or not lines[-1].get("done"):
        bad.append("not exactly one final line, last")
    if done and done[0]["elapsed_s"] >= 0.3 and not early:
        bad.append(f"no line before the last in {done[0]['elapsed_s']} s")
    for b in bad:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
