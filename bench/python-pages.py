#!/usr/bin/env python3
"""Times iterating every page of a stream from Python (the migstream package)
against `migstream-dump --summary` on the same file, in the same run, and
prints each as a ratio to the tool (median of several runs, each after a
warm-up run, so the file is in the page cache for both).

    bench/python-pages.py [--build DIR] [--size MIB] [--runs N] [--stream FILE]

The stream is migstream-demo's synthetic guest of --size MiB (default 512),
written once to DIR/bench-data/ and reused. Run it with the interpreter the
package is built for (Debian's /usr/bin/python3) on a plain build (meson
setup build && ninja -C build): a sanitizer build measures the sanitizer.

What each side does:
  dump     migstream-dump --summary FILE > /dev/null, as a process (its
           start-up, about a millisecond, is in its time): reads and checks
           every record, tracks every page's final state per region;
  extents  migstream.open(FILE), every record; for each PAGES record every
           extent (first, count, state) counted per region and state, and
           each DATA extent's bytes as a memoryview of the reader's buffer;
  pages    the same, each DATA page on its own ((index, memoryview) from
           Pages.iter_pages()), the other states per extent (they carry no
           bytes: a ZERO extent stands for up to 2^32 pages).
The Python times are taken inside the interpreter: its start-up and the
import of the package (about 30 ms) are left out.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(os.path.dirname(here), "build"))
    p.add_argument("--size", type=int, default=512, help="guest size in MiB (default 512)")
    p.add_argument("--runs", type=int, default=7, help="runs per measurement (default 7)")
    p.add_argument("--stream", help="an existing stream instead of the demo's")
    a = p.parse_args()

    sys.path.insert(0, os.path.join(a.build, "python"))
    import migstream
    from migstream import PageState

    tools = os.path.join(a.build, "tools")
    stream = a.stream
    if not stream:
        data = os.path.join(a.build, "bench-data")
        os.makedirs(data, exist_ok=True)
        stream = os.path.join(data, f"demo-{a.size}.mig")
        if not os.path.exists(stream):
            subprocess.run([os.path.join(tools, "migstream-demo"), "--size", str(a.size),
                            "-o", stream, "--force"], check=True, stdout=subprocess.DEVNULL)
    dump = [os.path.join(tools, "migstream-dump"), "--summary", stream]

    def run_dump():
        t = time.perf_counter()
        subprocess.run(dump, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    def run_extents():
        t = time.perf_counter()
        counts = {}
        data_bytes = 0
        with migstream.open(stream) as r:
            for rec in r:
                if isinstance(rec, migstream.Pages):
                    c = counts.setdefault(rec.region.id, [0] * 8)
                    for x, data in rec.iter_extents():
                        c[x.state] += x.count
                        if data is not None:
                            data_bytes += len(data)
        run_extents.result = (counts, data_bytes)
        return time.perf_counter() - t

    def run_pages():
        t = time.perf_counter()
        counts = {}
        data_bytes = 0
        with migstream.open(stream) as r:
            for rec in r:
                if isinstance(rec, migstream.Pages):
                    c = counts.setdefault(rec.region.id, [0] * 8)
                    for x in rec.extents:
                        if x.state != PageState.DATA:
                            c[x.state] += x.count
                    for _, page in rec.iter_pages():
                        c[PageState.DATA] += 1
                        data_bytes += len(page)
        run_pages.result = (counts, data_bytes)
        return time.perf_counter() - t

    runs = {"dump": run_dump, "extents": run_extents, "pages": run_pages}
    times = {k: [] for k in runs}
    for f in runs.values():  # warm-up: the page cache, the interpreter
        f()
    for _ in range(a.runs):
        for k, f in runs.items():
            times[k].append(f())
    assert run_extents.result == run_pages.result

    counts, data_bytes = run_pages.result
    pages = sum(sum(c) for c in counts.values())
    size = os.path.getsize(stream)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"stream     {stream}: {size} bytes, {pages} pages "
          f"({data_bytes // 4096} with data), Python {sys.version.split()[0]} "
          f"({sys.executable}), libmigstream {migstream.__version__}")
    print(f"runs       {a.runs} each, medians")
    for k in runs:
        ratio = med[k] / med["dump"]
        spread = f"{min(times[k]) * 1000:.1f}..{max(times[k]) * 1000:.1f} ms"
        print(f"{k:<10} {med[k] * 1000:7.1f} ms  ({spread})  ratio {ratio:.2f}  "
              f"{size / med[k] / 2**20:.0f} MiB/s of stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
