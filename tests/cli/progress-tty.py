#!/usr/bin/env python3
"""The progress line that --progress=auto draws on a terminal
(docs/OUTPUT.md, "Progress"; mst_progress_update() and mst_progress_done()
in tools/common.c), with standard error on a pseudo-terminal:

- migstream-pack, its image a regular file (the total known), writing its
  stream to a pipe this test leaves unread for a while: the pack waits on
  its output with most of the image unread, so a line is drawn once it
  goes on, whatever the machine's speed. Each update is "\\r" then the
  percentage, the MiB read, the pages, the rate and the time left, padded
  with spaces; the run ends with "\\r\\033[K" (back to the start, the line
  cleared): no newline, nothing left on the line.
- migstream-validate reading that stream from a pipe fed in two halves with
  a pause between: no total, so "\\r" then the MiB read and the rate.
- --progress=none, -q, and --progress=auto with standard error not a
  terminal: nothing drawn.

    progress-tty.py TOOLS_DIR

Exits 77 (skipped) when no pseudo-terminal can be made.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import tty

PAUSE = 0.4  # longer than the line's 0.1 s between redraws
IMAGE_MIB = 16
# One update (tools/common.c, mst_progress_update): with a total and pages
# counted, then without a total (pages not counted by validate).
WITH_TOTAL = re.compile(rb"\r *(\d+\.\d)%  (\d+) MiB  (\d+) pages  \d+ MiB/s  ETA \d+s   ")
NO_TOTAL = re.compile(rb"\r(\d+) MiB  \d+ MiB/s   ")
CLEAR = b"\r\x1b[K"

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def on_tty(argv, stdin=None, stdout=None, feed=None, drain_after=0.0, tty_stderr=True):
    """Runs ARGV with standard error on a new pseudo-terminal (or a pipe
    when not TTY_STDERR); FEED(proc) writes its input; its standard output,
    when a pipe, is read only after DRAIN_AFTER seconds. Returns the exit
    status, what the terminal showed (or the pipe got) and the output."""
    master, slave = os.openpty()
    tty.setraw(slave)  # the bytes as written: no \n to \r\n
    err_w = slave if tty_stderr else subprocess.PIPE
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=err_w)
    os.close(slave)
    shown = bytearray()

    def read_tty():
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: no process holds the terminal any more
                return
            if not b:
                return
            shown.extend(b)

    reader = threading.Thread(target=read_tty)
    reader.start()
    if feed:
        threading.Thread(target=feed, args=(p,)).start()
    out = b""
    if stdout == subprocess.PIPE:
        time.sleep(drain_after)
        out = p.stdout.read()
    if not tty_stderr:
        shown.extend(p.stderr.read())
    status = p.wait()
    reader.join(10)
    os.close(master)
    return status, bytes(shown), out


def drawn(shown):
    """The updates SHOWN holds before its final clear (a tool may clear the
    line more than once as it ends: mst_progress_done() is idempotent on the
    terminal), each starting with "\\r"."""
    while shown.endswith(CLEAR):
        shown = shown[: -len(CLEAR)]
    lines = [b"\r" + x for x in shown.split(b"\r")[1:]]
    return lines if shown[:1] == b"\r" else [shown] + lines


def main():
    tools = sys.argv[1]
    try:
        m, s = os.openpty()
        os.close(m)
        os.close(s)
    except OSError as e:
        print(f"no pseudo-terminal: {e}")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as d:
        image = os.path.join(d, "guest.img")
        with open(image, "wb") as f:  # random: every page sent as data
            f.write(os.urandom(IMAGE_MIB << 20))
        pack = [os.path.join(tools, "migstream-pack"), "-o", "-", image]

        status, shown, stream = on_tty(pack, stdout=subprocess.PIPE, drain_after=PAUSE)
        check(status == 0 and len(stream) > IMAGE_MIB << 20, "pack: the stream written")
        check(shown.endswith(CLEAR), "pack: ends with \\r\\033[K, the line cleared")
        check(b"\n" not in shown, "pack: no newline")
        lines = drawn(shown)
        check(len(lines) >= 1,
              f"pack: updates drawn before the clear ({len(lines)})")
        matched = [WITH_TOTAL.fullmatch(x) for x in lines]
        check(all(matched), "pack: each update is \\r, %, MiB, pages, rate, ETA, spaces: "
              + repr([x for x, m in zip(lines, matched) if not m][:2]))
        if all(matched) and matched:
            pct = [float(m.group(1)) for m in matched]
            pages = [int(m.group(3)) for m in matched]
            check(0 < pct[0] and pct == sorted(pct) and pct[-1] <= 100,
                  f"pack: the percentage goes up, at most 100 ({pct[0]} .. {pct[-1]})")
            check(pages == sorted(pages) and pages[-1] <= (IMAGE_MIB << 20) // 4096,
                  f"pack: the pages go up ({pages[0]} .. {pages[-1]})")

        path = os.path.join(d, "guest.ms")
        with open(path, "wb") as f:
            f.write(stream)
        half = len(stream) // 2

        def feed(p):
            p.stdin.write(stream[:half])
            p.stdin.flush()
            time.sleep(PAUSE)
            p.stdin.write(stream[half:])
            p.stdin.close()

        validate = [os.path.join(tools, "migstream-validate"), "-"]
        status, shown, _ = on_tty(validate, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  feed=feed)
        check(status == 0, "validate -: valid")
        check(shown.endswith(CLEAR) and b"\n" not in shown,
              "validate -: ends with \\r\\033[K, no newline")
        lines = drawn(shown)
        matched = [NO_TOTAL.fullmatch(x) for x in lines]
        check(len(lines) >= 1 and all(matched),
              f"validate -: updates of MiB and rate, no total: {lines[:2]!r}")

        for opts in (["--progress=none"], ["-q"]):
            status, shown, _ = on_tty(pack[:1] + opts + ["-o", "-", image],
                                      stdout=subprocess.PIPE, drain_after=PAUSE)
            check(status == 0 and shown == b"", f"pack {opts[0]}: nothing drawn ({shown[:40]!r})")
        status, shown, _ = on_tty(pack, stdout=subprocess.PIPE, drain_after=PAUSE,
                                  tty_stderr=False)
        check(status == 0 and shown == b"", f"pack, stderr a pipe: nothing drawn ({shown[:40]!r})")
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
