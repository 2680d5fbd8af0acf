#!/usr/bin/env python3
"""The resource tests (meson suite 'resources'): the cost model of
docs/SECURITY.md ("Cost") checked on hostile inputs from gen.py.

    run.py CASE TOOLS_DIR       runs one case of CASES below
    run.py --list               names the cases

A case runs a tool on generated inputs of size n and k*n in the same run
and checks that
  - its CPU time (user + system, the best of 3 runs, less the time the
    tool takes on a tiny input of the class) grows at most as n log n:
    the ratio stays below SLACK * k * log(k*n) / log(n). Comparing sizes
    within one run, rather than absolute times, keeps the check meaningful
    on a loaded machine; n is doubled first until the work is long enough
    to measure;
  - its peak RSS stays within the case's bound (MiB), which is the bound
    docs/SECURITY.md states for it, and does not grow with n by more than
    the case allows;
  - the bytes it writes (the disk blocks of its output) stay within the
    case's bound;
  - it exits with the status the case expects and, where given, says what
    the case expects (on standard output or standard error: validate
    reports a refused stream on standard output).
A case with "fixed": True has an input of one size (a single extent that
claims terabytes): it is run once and only its bounds are checked, with
its CPU time held below "cpu" seconds.

Under a sanitizer (MS_SANITIZED set by meson) RSS bounds are scaled by
SAN_RSS_FACTOR and given SAN_RSS_EXTRA MiB more: shadow memory and the
allocator's quarantine are the sanitizer's, not the tool's.
"""
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "gen.py")

SLACK = 2.0  # times n log n growth allowed: only clear super-linear growth fails
K = 8  # the larger input is K times the smaller
MIN_WORK = 0.08  # seconds of CPU the smaller input must take to be measured
MAX_DOUBLINGS = 10
SAN_RSS_FACTOR = 3
SAN_RSS_EXTRA = 192

MiB = 1 << 20

# Each case: gen (gen.py class), n0 (first size), cmd (argv; {in} the input,
# {out} a fresh output path, {tmp} a scratch directory, which is also
# $TMPDIR), exit (statuses allowed), rss (peak, MiB, or (MiB, bytes per
# input byte)), rss_growth (MiB the peak may grow from n to k*n beyond what
# rss allows per byte; default 32), out (bytes the output and the scratch
# directory may take on disk, or (bytes, bytes per input byte); unchecked
# when absent), says (a regular expression the standard output and error
# together must match), max_n (the largest n tried; default 2^19), suffix
# (of the input files' names: ".cbor" makes migstream-compat read a schema
# file), fixed and cpu (see above).
CASES = {
    # Page-state maps (libmigstream/state/region_map.c): long ZERO runs over
    # a map with many chunks, and many spans laid down from the top.
    "pagemap-runs-validate": dict(gen="pm-runs", n0=20000,
                                  cmd=["migstream-validate", "{in}"], exit=(0,), rss=64),
    "pagemap-runs-dump": dict(gen="pm-runs", n0=20000,
                              cmd=["migstream-dump", "--summary", "{in}"], exit=(0,), rss=64),
    "pagemap-runs-diff": dict(gen="pm-runs", n0=20000,
                              cmd=["migstream-diff", "{in}", "{in}"], exit=(0,), rss=64),
    "pagemap-runs-replay": dict(gen="pm-runs", n0=20000,
                                cmd=["migstream-replay", "-o", "{out}", "{in}"], exit=(0,),
                                rss=64, out=1 * MiB),
    "pagemap-spans-validate": dict(gen="pm-spans", n0=20000,
                                   cmd=["migstream-validate", "{in}"], exit=(0,), rss=64),
    "pagemap-spans-dump": dict(gen="pm-spans", n0=20000,
                               cmd=["migstream-dump", "--summary", "{in}"], exit=(0,), rss=64),
    # FILL extents that describe far more than the stream carries: refused
    # before anything is written past the output limit (1 TiB by default)
    # or the free space, and FILL runs sent again and again written once.
    "fill-huge-replay": dict(gen="fill-huge", n0=1, fixed=True, cpu=1.0,
                             cmd=["migstream-replay", "-q", "-o", "{out}", "{in}"], exit=(2,),
                             rss=64, out=0, says="the output would take 8796093022208 bytes"),
    "fill-repeat-replay": dict(gen="fill-repeat", n0=20000,
                               cmd=["migstream-replay", "-q", "-o", "{out}", "{in}"], exit=(0,),
                               rss=64, out=17 * MiB),
    "fill-huge-diff": dict(gen="fill-huge", n0=1, fixed=True, cpu=1.0,
                           cmd=["migstream-diff", "{in}", "{in}"], exit=(0,), rss=64, out=MiB),
    "fill-repeat-diff": dict(gen="fill-repeat", n0=20000,
                             cmd=["migstream-diff", "{in}", "{in}"], exit=(0,), rss=64, out=MiB),
    # Export writes an item per page: refused before it writes past its
    # limit (1 TiB by default, or --max-output) or the free space.
    "fill-huge-export": dict(gen="fill-huge", n0=1, fixed=True, cpu=1.0, qemu=True,
                             cmd=["migstream-export", "qemu", "-q", "-o", "{out}", "{in}"],
                             exit=(2,), rss=64, out=0, says="more than its limit of"),
    "fill-repeat-export": dict(gen="fill-repeat", n0=20000, qemu=True,
                               cmd=["migstream-export", "qemu", "-q", "--max-output", "64M", "-o",
                                    "{out}", "{in}"],
                               exit=(2,), rss=64, out=0,
                               says="more than its limit of 67108864 bytes"),
    # zstd frames of 2 KiB that decode to 64 MiB each: the stream's
    # decoding is bounded by 1 GiB and 1024 times its bytes
    # (max_decode_ratio), so time grows with the input, not 30000 times it.
    "zstd-amp-validate": dict(gen="zstd-amp", n0=80000,
                              cmd=["migstream-validate", "{in}"], exit=(1,), rss=(160, 0),
                              says="zstd data would decode to"),
    "zstd-amp-dump": dict(gen="zstd-amp", n0=80000,
                          cmd=["migstream-dump", "--summary", "{in}"], exit=(1,), rss=(160, 0),
                          says="zstd data would decode to"),
    # Schemas: fields learned from streams found by a hash, not a scan (past
    # 65536 fields, max_fields, the stream is refused: exit 1); a
    # CBOR schema refused before it is parsed past the JSON values its
    # max_fields allows (16 per field), so memory stays bounded.
    "compat-fields": dict(gen="compat-fields", n0=20000, schema=True,
                          cmd=["migstream-compat", "{in}", "{in}"], exit=(0, 1), rss=(64, 16)),
    "compat-schema-cbor": dict(gen="schema-cbor-arrays", n0=1 << 20, schema=True, fixed=True,
                               cpu=2.0, cmd=["migstream-compat", "{in}", "{in}"], exit=(1,),
                               rss=(48, 0), says="JSON values, more than", suffix=".cbor"),
    # migstream-pack parses device states given as JSON (and manifests)
    # only after counting their values: at most 2^20.
    "pack-json-values": dict(gen="json-values", n0=8 << 20, fixed=True, cpu=1.0,
                             cmd=["migstream-pack", "-o", "{out}", "--region", "ram:-:{in}",
                                  "--device", "dev:dev:1:{in}"],
                             exit=(1,), rss=(32, 0), says="JSON values, more than", suffix=".json"),
    "fill-huge-export-xen": dict(gen="fill-huge", n0=1, fixed=True, cpu=1.0, xen=True,
                                 cmd=["migstream-export", "xen", "-q", "-o", "{out}", "{in}"],
                                 exit=(2,), rss=64, out=0,
                                 says="the output would take"),
    # The same FILL run again and again: its pages also went through the
    # batch's set of pfns, whose emptying looped for ever.
    "fill-repeat-export-xen": dict(gen="fill-repeat", n0=20000, xen=True,
                                   cmd=["migstream-export", "xen", "-q", "--max-output", "64M",
                                        "-o", "{out}", "{in}"],
                                   exit=(2,), rss=64, out=0,
                                   says="more than its limit of 67108864"),
    # Device states kept by diff (within 256 MiB, max_device_memory) and
    # dump --device (within 64 MiB): memory follows the input up to there;
    # found by a hash, not inserted in a sorted array.
    "devices-many-diff": dict(gen="devices-many", n0=20000,
                              cmd=["migstream-diff", "{in}", "{in}"], exit=(0,),
                              rss=(64, 8)),
    "devices-many-dump": dict(gen="devices-many", n0=20000,
                              cmd=["migstream-dump", "--device", "dev", "{in}"], exit=(0,),
                              rss=(64, 8)),
    # The QEMU importer (libmigstream/qemu/), through ms_open() and through
    # the import: the trailer's descriptions against device sections, pass
    # detection, sections and RAM blocks looked up by id and name.
    "qemu-vmsd-expand-validate": dict(gen="qemu-vmsd-expand", n0=20000, qemu=True,
                                      cmd=["migstream-validate", "{in}"], exit=(0,), rss=64),
    "qemu-vmsd-expand-import": dict(gen="qemu-vmsd-expand", n0=20000, qemu=True,
                                    cmd=["migstream-import", "qemu", "-o", "{out}", "{in}"],
                                    exit=(0,), rss=64, out=(MiB, 4)),
    # The trailer parsed and the sections held take memory in proportion to
    # them (at most 24 bytes per byte of trailer, MAX_SECTIONS headers).
    "qemu-trailer-big-validate": dict(gen="qemu-trailer-big", n0=20000, qemu=True,
                                      cmd=["migstream-validate", "{in}"], exit=(0,),
                                      rss=(64, 24)),
    "qemu-trailer-big-import": dict(gen="qemu-trailer-big", n0=20000, qemu=True,
                                    cmd=["migstream-import", "qemu", "-o", "{out}", "{in}"],
                                    exit=(0,), rss=(64, 24), out=(MiB, 4)),
    "qemu-trailer-dup-validate": dict(gen="qemu-trailer-dup", n0=20000, qemu=True,
                                      cmd=["migstream-validate", "{in}"], exit=(0,), rss=64),
    # Refused before it is parsed: memory stays what the text takes.
    "qemu-trailer-empty-validate": dict(gen="qemu-trailer-empty", n0=20000, qemu=True,
                                        cmd=["migstream-validate", "{in}"], exit=(1,),
                                        rss=(16, 4), says="would take about"),
    # The pass bitmap grows with the chunks the stream touches, up to its
    # budget (SENT_BUDGET, 64 MiB): the peak may grow by that much.
    "qemu-zero-pass-validate": dict(gen="qemu-zero-pass", n0=20000, qemu=True,
                                    cmd=["migstream-validate", "{in}"], exit=(0,), rss=160,
                                    rss_growth=80),
    "qemu-zero-pass-import": dict(gen="qemu-zero-pass", n0=20000, qemu=True,
                                  cmd=["migstream-import", "qemu", "-o", "{out}", "{in}"],
                                  exit=(0,), rss=160, rss_growth=80, out=(MiB, 8)),
    "qemu-sections-validate": dict(gen="qemu-sections", n0=20000, qemu=True,
                                   cmd=["migstream-validate", "{in}"], exit=(0,), rss=96),
    "qemu-sections-import": dict(gen="qemu-sections", n0=20000, qemu=True,
                                 cmd=["migstream-import", "qemu", "-o", "{out}", "{in}"],
                                 exit=(0,), rss=96, out=(MiB, 4)),
    # Declaring 1024 blocks is the tiny input's work already: start larger.
    "qemu-blocks-validate": dict(gen="qemu-blocks", n0=1 << 20, qemu=True, max_n=1 << 22,
                                 cmd=["migstream-validate", "{in}"], exit=(0,), rss=64),
}


def generate(cls, n, path):
    subprocess.run([sys.executable, GEN, cls, str(n), path], check=True)


def disk_bytes(path):
    """Bytes of disk blocks under @path (a file or a directory)."""
    if not os.path.lexists(path):
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_blocks * 512
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


class Failed(Exception):
    pass


def run_once(case, tools, inp, work, timeout, baseline=False):
    """One run: (cpu seconds, peak RSS in MiB, disk bytes of {out}). A
    @baseline run (the tiny input) need only end without a signal."""
    out = os.path.join(work, "out")
    shutil.rmtree(out, ignore_errors=True)
    if os.path.lexists(out) and not os.path.isdir(out):
        os.unlink(out)
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp, exist_ok=True)
    argv = [a.format(**{"in": inp, "out": out, "tmp": tmp}) for a in case["cmd"]]
    argv[0] = os.path.join(tools, argv[0])
    with open(os.path.join(work, "stderr"), "wb") as err, \
            open(os.path.join(work, "stdout"), "wb") as out_f:
        p = subprocess.Popen(argv, stdout=out_f, stderr=err, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, TMPDIR=tmp))
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise Failed("%s took longer than %.1f s on %s" %
                             (" ".join(argv), timeout, os.path.basename(inp)))
            time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    with open(os.path.join(work, "stderr"), "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    with open(os.path.join(work, "stdout"), "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
        says = f.read().decode("utf-8", "replace") + stderr
    if baseline:
        if code < 0 or code >= 128:
            raise Failed("%s ended with status %d: %s" % (" ".join(argv), code, stderr[-2000:]))
    elif code not in case["exit"]:
        raise Failed("%s exited with %d (expected %s): %s" %
                     (" ".join(argv), code, case["exit"], stderr[-2000:]))
    if not baseline and "says" in case and not re.search(case["says"], says):
        raise Failed("%s: its output does not match /%s/:\n%s" %
                     (" ".join(argv), case["says"], says[-2000:]))
    used = disk_bytes(out) + disk_bytes(tmp)
    shutil.rmtree(out, ignore_errors=True)
    if os.path.lexists(out) and not os.path.isdir(out):
        os.unlink(out)
    shutil.rmtree(tmp, ignore_errors=True)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, used


def best_of(case, tools, inp, work, runs=3, timeout=120.0, baseline=False):
    cpu, rss, used = [], 0.0, 0
    for _ in range(runs):
        c, r, u = run_once(case, tools, inp, work, timeout, baseline)
        cpu.append(c)
        rss, used = max(rss, r), max(used, u)
    return min(cpu), rss, used


def bound_of(spec, size):
    """A bound given as a constant or as (constant, per input byte)."""
    if isinstance(spec, tuple):
        return spec[0] + spec[1] * size
    return spec


def check_bounds(name, case, n, size, rss, used, sanitized):
    spec = case.get("rss")
    if spec is not None:
        bound = bound_of(spec, size / MiB)
        if sanitized:
            bound = bound * SAN_RSS_FACTOR + SAN_RSS_EXTRA
        if rss > bound:
            raise Failed("%s: peak RSS %.1f MiB at n=%d exceeds %.1f MiB" % (name, rss, n, bound))
    if "out" in case and used > bound_of(case["out"], size):
        raise Failed("%s: %d bytes written at n=%d (input %d bytes) exceed %d" %
                     (name, used, n, size, bound_of(case["out"], size)))


def run_case(name, tools):
    case = CASES[name]
    sanitized = bool(os.environ.get("MS_SANITIZED"))
    modules = os.environ.get("MS_MODULES", "qemu schema libvirt xen").split()
    for m in ("qemu", "schema", "xen"):
        if case.get(m) and m not in modules:
            print("skip: needs the %s module" % m)
            return 77
    work = tempfile.mkdtemp(prefix="ms-resources-")
    try:
        if case.get("fixed"):
            inp = os.path.join(work, "input" + case.get("suffix", ""))
            generate(case["gen"], case["n0"], inp)
            cpu, rss, used = best_of(case, tools, inp, work, runs=1,
                                     timeout=max(30.0, 4 * case["cpu"]))
            print("%s: input %d bytes: cpu %.3f s, rss %.1f MiB, written %d bytes" %
                  (name, os.path.getsize(inp), cpu, rss, used))
            if cpu > case["cpu"] * (4 if sanitized else 1):
                raise Failed("%s: %.2f s of CPU exceeds %.2f s" % (name, cpu, case["cpu"]))
            check_bounds(name, case, case["n0"], os.path.getsize(inp), rss, used, sanitized)
            return
        tiny = os.path.join(work, "tiny" + case.get("suffix", ""))
        generate(case["gen"], max(case["n0"] // 64, 256), tiny)
        t0, _, _ = best_of(case, tools, tiny, work, baseline=True)
        n = case["n0"]
        small = os.path.join(work, "small" + case.get("suffix", ""))
        for _ in range(MAX_DOUBLINGS):
            generate(case["gen"], n, small)
            t_small, rss_small, used_small = best_of(case, tools, small, work)
            if t_small - t0 >= MIN_WORK or 2 * n > case.get("max_n", 1 << 19):
                break
            n *= 2
        check_bounds(name, case, n, os.path.getsize(small), rss_small, used_small, sanitized)
        large = os.path.join(work, "large" + case.get("suffix", ""))
        generate(case["gen"], K * n, large)
        # Work too short to measure counts as MIN_WORK: noise alone must not
        # make a ratio.
        w_small = max(t_small - t0, MIN_WORK)
        allowed = SLACK * K * math.log(K * n) / math.log(n)
        t_large, rss_large, used_large = best_of(
            case, tools, large, work, timeout=max(20.0, 3 * allowed * t_small + 10))
        w_large = max(t_large - t0, 0.0)
        ratio = w_large / w_small
        print("%s: tiny %.3f s; n=%d (%d bytes) %.3f s, rss %.1f MiB, written %d; "
              "n=%d (%d bytes) %.3f s, rss %.1f MiB, written %d; work ratio %.2f (allowed %.2f)" %
              (name, t0, n, os.path.getsize(small), t_small, rss_small, used_small, K * n,
               os.path.getsize(large), t_large, rss_large, used_large, ratio, allowed))
        check_bounds(name, case, K * n, os.path.getsize(large), rss_large, used_large, sanitized)
        growth = case.get("rss_growth", 32) * (SAN_RSS_FACTOR if sanitized else 1)
        if isinstance(case.get("rss"), tuple):
            growth += case["rss"][1] * (os.path.getsize(large) - os.path.getsize(small)) / MiB
        if rss_large - rss_small > growth:
            raise Failed("%s: peak RSS grew from %.1f to %.1f MiB between n=%d and n=%d" %
                         (name, rss_small, rss_large, n, K * n))
        if ratio > allowed:
            raise Failed("%s: CPU time grew %.1f times for %d times the input (at most %.1f "
                         "allowed)" % (name, ratio, K, allowed))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(sorted(CASES)))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        sys.stderr.write("usage: run.py CASE TOOLS_DIR | --list\n")
        return 2
    try:
        if run_case(sys.argv[1], sys.argv[2]) == 77:
            return 77
    except Failed as e:
        print("FAIL " + str(e))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
