#!/usr/bin/env python3
"""Counts the test cases of a meson test run, from its testlog.json.

usage: test-summary.py BUILDDIR/meson-logs/testlog.json [FUZZ_SMOKE_RESULTS
                       [VALGRIND_RESULTS]]

cmocka (1.1.5) ends every group of tests with lines such as
    [  PASSED  ] 3 test(s).
    [  FAILED  ] 1 test(s), listed below:
    [  SKIPPED ] 1 test(s), listed below:
and writes them to stderr, which meson logs apart from stdout, so both are
read. A test without such lines counts as one case, by meson's result.

FUZZ_SMOKE_RESULTS (scripts/fuzz-smoke.sh) adds one case per fuzz target.
VALGRIND_RESULTS (scripts/valgrind.sh) adds its programs, counted from its
closing "N passed, N failed" line as tests/cli/run.sh's are; without that
line (the script died) it counts as one failure.

Prints one line per test, then, as the very last line,
"N passed, N failed, N skipped". Exit status: 0 when some case passed and
none failed; 1 otherwise (also when the log is missing, damaged or empty).
"""
import json
import re
import sys

CMOCKA_LINE = re.compile(r"^\[\s*(PASSED|FAILED|SKIPPED)\s*\] (\d+) test\(s\)", re.M)
# The plain closing line of tests/cli/run.sh: "N passed, N failed".
PLAIN_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)
PASSING = {"OK", "EXPECTEDFAIL"}


def cases(test):
    """(passed, failed, skipped) for one test's entry in testlog.json."""
    result = test.get("result")
    output = (test.get("stdout") or "") + "\n" + (test.get("stderr") or "")
    found = CMOCKA_LINE.findall(output)
    plain = PLAIN_LINE.findall(output)
    if not found and plain and result != "EXPECTEDFAIL":
        passed, failed = (int(x) for x in plain[-1])
        if result not in PASSING and failed == 0:
            failed = 1  # killed or timed out after its last case
        return passed, failed, 0
    if result == "EXPECTEDFAIL" or not found:
        # should_fail tests and non-cmocka tests: meson's verdict is the case.
        if result in PASSING:
            return 1, 0, 0
        return (0, 0, 1) if result == "SKIP" else (0, 1, 0)
    n = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0}
    for kind, count in found:
        n[kind] += int(count)
    if result not in PASSING and result != "SKIP" and n["FAILED"] == 0:
        # A crash, a sanitizer abort, a timeout or a failed group setup: cmocka
        # printed no failure count for it, but the test failed.
        n["FAILED"] = 1
    return n["PASSED"], n["FAILED"], n["SKIPPED"]


def main():
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(__doc__)
    tests, missing, damaged = [], False, False
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    tests.append(json.loads(line))
    except FileNotFoundError:
        missing = True
    except json.JSONDecodeError as e:
        print(f"test-summary: {sys.argv[1]} is damaged: {e}", file=sys.stderr)
        damaged = True

    total = [0, 0, 0]
    for t in tests:
        c = cases(t)
        total = [a + b for a, b in zip(total, c)]
        print(f"  {t.get('result', '?'):<8} {t.get('name', '?')}: "
              f"{c[0]} passed, {c[1]} failed, {c[2]} skipped")
    # Optional second file: scripts/fuzz-smoke.sh's "PASS|FAIL target ..." lines,
    # one case per fuzz target.
    if len(sys.argv) == 3:
        try:
            with open(sys.argv[2], encoding="utf-8") as f:
                for line in f:
                    word = line.split()
                    if len(word) >= 2:
                        ok = word[0] == "PASS"
                        total[0 if ok else 1] += 1
                        print(f"  {'OK' if ok else 'FAIL':<8} fuzz run / {word[1]}: "
                              f"{' '.join(word[2:])}")
        except FileNotFoundError:
            total[1] += 1
            print("  FAIL     fuzz runs: no results (scripts/fuzz-smoke.sh did not finish)")
    # Optional third file: scripts/valgrind.sh's "PASS|FAIL name ..." lines and
    # its closing "N passed, N failed" line, which gives the counts.
    if len(sys.argv) == 4:
        try:
            with open(sys.argv[3], encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            word = line.split()
            if len(word) >= 2 and word[0] in ("PASS", "FAIL"):
                print(f"  {'OK' if word[0] == 'PASS' else 'FAIL':<8} valgrind / "
                      f"{word[1].rstrip(':')}: {' '.join(word[2:])}")
        plain = PLAIN_LINE.findall(text)
        if plain:
            passed, failed = (int(x) for x in plain[-1])
            total[0] += passed
            total[1] += failed
        else:
            total[1] += 1
            print("  FAIL     valgrind runs: no results (scripts/valgrind.sh did not finish)")
    sys.stdout.flush()
    if not tests:
        why = "meson wrote no test log" if missing else f"{sys.argv[1]} lists no test"
        print(f"test-summary: NO TESTS RAN: {why} (does tests/meson.build define any?)",
              file=sys.stderr)
    elif total[0] + total[1] == 0:
        print("test-summary: NO TEST CASE RAN (none passed or failed)", file=sys.stderr)
    sys.stderr.flush()
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped", flush=True)
    return 0 if total[0] > 0 and total[1] == 0 and not damaged else 1


if __name__ == "__main__":
    sys.exit(main())
