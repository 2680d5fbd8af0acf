#!/usr/bin/env python3
"""Writes the Xen streams the tests import, with what each must import to.

usage: mkxen.py OUTDIR [NAME...]

For each stream NAME it writes OUTDIR/NAME.xen (the stream, built by
tests/pylib/xenstream.py from Xen's specs alone) and OUTDIR/NAME.expect (the
state docs/XEN.md says the import holds: regions, rounds, every page by pfn,
every device with its raw bytes' FNV-1a hash), and OUTDIR/fixtures.txt lists
them: name, format (libxl or libxc), and what verify-stream-v2 says of the
stream ("pass"; "fixed": only once its Python 3 bug with xenstore data is
fixed, see verify.py; "no": a record it refuses, though Xen's spec has it).
With NAMEs, it writes only those streams (and lists only them).

Between them the streams hold every record type of both specs, HVM and PV
(64 and 32-bit) guests, every page type, checkpoints, a VERIFY pass, a
version 2 stream and unknown optional records.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import xenstream as xs  # noqa: E402
from xenstream import page_bytes  # noqa: E402

CPUID = [(0, 0xFFFFFFFF, 0xD, 0x756E6547, 0x6C65746E, 0x49656E69),
         (1, 0xFFFFFFFF, 0x806EC, 0x800, 0xFEF83203, 0x178BFBFF),
         (7, 0, 0, 0x9C2FBB, 0, 0xBC000400)]
MSRS = [(0xCE, 0, 0x80000000), (0x10A, 0, 0x2000000)]


def blob(tag, n):
    """@n deterministic bytes that start with @tag."""
    return (tag + bytes(((i * 37 + 11) & 0xFF) for i in range(n)))[:n]


def data(pfn, gen=0, zero=None):
    if zero is None:
        zero = gen == 0 and pfn % 7 == 0
    return (pfn, xs.NOTAB, page_bytes(pfn, gen, zero))


def hvm_memory(s):
    """An HVM guest's first pass: low RAM with the VGA hole (XTAB), Xen's
    special pages below 4 GiB, a few pages above 4 GiB; then two
    iterations of dirty pages, the last one ballooning a page out."""
    it0 = []
    for pfn in range(0, 2048):
        if 0xA0 <= pfn < 0xC0:
            it0.append((pfn, xs.XTAB, None))
        else:
            it0.append(data(pfn))
    it0 += [data(pfn) for pfn in range(0xFEFF0, 0xFEFF8)]
    it0 += [data(pfn) for pfn in range(0x100000, 0x100004)]
    s.send_pages(it0)
    s.send_pages([data(10, 1), data(11, 1), data(12, 1, zero=True), data(500, 1),
                  data(1500, 1), data(2000, 1)])
    s.send_pages([data(3, 2), data(11, 2), data(0xFEFF1, 2), (0x100002, xs.XTAB, None)])


def hvm_state(s, gen=0):
    s.tsc_info(0, 2400000 + gen, 123456789 + gen, 1)
    s.hvm_params([(1, 0xFEFFC), (5, 0xFEFF0), (6, 0xFEFF1), (9, 0x1F), (17, 0xFEFFD),
                  (33, 8 + gen)])
    s.hvm_context(blob(b"HVMCTX%d" % gen, 1200 + gen))


def hvm(libxl):
    s = xs.Stream(xs.HVM, 3, libxl)
    s.libxc_start()
    s.cpuid_policy(CPUID)
    s.msr_policy(MSRS)
    s.static_data_end()
    hvm_memory(s)
    hvm_state(s)
    s.libxc_end()
    if libxl:
        s.emulator_xenstore(xs.EMU_QEMU_UPSTREAM, 0, [
            (b"physmap/f0000000/start_addr", b"f0000000"),
            (b"physmap/f0000000/size", b"800000"),
            (b"physmap/f0000000/name", b"vga.vram")])
        s.emulator_context(xs.EMU_QEMU_UPSTREAM, 0, blob(b"QEVM\0\0\0\3", 3000))
        s.libxl_end()
    return s


def pv(width):
    s = xs.Stream(xs.PV, 3, libxl=False)
    s.libxc_start()
    top = xs.L4TAB_PIN if width == 8 else xs.L3TAB_PIN
    mid = xs.L3TAB if width == 8 else xs.L2TAB
    s.x86_pv_info(width, 4 if width == 8 else 3)
    s.cpuid_policy(CPUID)
    s.msr_policy(MSRS)
    s.static_data_end()
    s.p2m_frames(0, 1023)
    it0 = []
    for pfn in range(1024):
        if pfn == 1:
            t = top
        elif pfn in (2, 3):
            t = mid
        elif 4 <= pfn < 8:
            t = xs.L2TAB if width == 8 else xs.L2TAB_PIN
        elif 8 <= pfn < 24:
            t = xs.L1TAB_PIN if pfn % 2 else xs.L1TAB
        elif 900 <= pfn < 910:
            t = xs.XALLOC
        elif pfn == 910:
            t = xs.BROKEN
        elif 911 <= pfn < 931:
            t = xs.XTAB
        else:
            t = xs.NOTAB
        if t in xs.DATA_TYPES:
            it0.append((pfn, t, page_bytes(pfn, 0, pfn % 7 == 0 or pfn == 20)))
        else:
            it0.append((pfn, t, None))
    s.send_pages(it0)
    # The p2m grows during the migration: a second record covers more pfns.
    s.p2m_frames(0, 1535)
    it1 = [(5, xs.NOTAB, page_bytes(5, 1)), (8, xs.L1TAB_PIN, page_bytes(8, 1)),
           (1200, xs.XALLOC, None)]
    it1 += [(pfn, xs.NOTAB, page_bytes(pfn, 1)) for pfn in range(1100, 1131)]
    s.send_pages(it1)
    s.tsc_info(1, 2000000, 987654321, 3)
    s.shared_info(page_bytes(0xFFFF, 0))
    for v in (0, 1):
        s.vcpu(xs.X86_PV_VCPU_BASIC, v, blob(b"BASIC%d" % v, 5168 if width == 8 else 2800))
        # Xen 4.6 to 4.8 sent empty records (the spec's errata): vCPU 1's.
        s.vcpu(xs.X86_PV_VCPU_EXTENDED, v, blob(b"EXT", 72) if v == 0 else b"")
        s.vcpu(xs.X86_PV_VCPU_XSAVE, v, blob(b"XSAVE", 832))
        s.vcpu(xs.X86_PV_VCPU_MSRS, v, struct.pack("<IIQ", 0xC0000080, 0, 0xD01) * 2)
    s.libxc_end()
    return s


def remus(libxl):
    """A checkpointed HVM stream (Remus): a live pass, then checkpoints."""
    s = xs.Stream(xs.HVM, 3, libxl)
    s.libxc_start()
    s.cpuid_policy(CPUID)
    s.msr_policy(MSRS)
    s.static_data_end()
    s.send_pages([data(pfn) for pfn in range(512)])
    for gen in (1, 2, 3):
        if gen > 1:
            s.send_pages([data(pfn, gen) for pfn in (7, 100, 101, 300 + gen)])
        hvm_state(s, gen)
        s.checkpoint()
        if libxl:
            s.emulator_context(xs.EMU_QEMU_UPSTREAM, 0, blob(b"QEVM%d" % gen, 700))
            s.checkpoint_end()
    # After the last checkpoint the primary ended the stream.
    s.libxc_end()
    if libxl:
        s.libxl_end()
    return s


def verify():
    """VERIFY: the saver sends all of memory again, for the restore to
    compare."""
    s = xs.Stream(xs.HVM, 3, libxl=False)
    s.libxc_start()
    s.static_data_end()
    pages = [data(pfn) for pfn in range(300)]
    s.send_pages(pages)
    hvm_state(s)
    s.verify()
    s.send_pages(pages)
    s.libxc_end()
    return s


def v2():
    """Version 2 (Xen 4.6 to 4.13): no STATIC_DATA_END, no CPU policies."""
    s = xs.Stream(xs.HVM, 2, libxl=False, xen=(4, 11))
    s.libxc_start()
    s.send_pages([data(pfn) for pfn in range(256)])
    hvm_state(s)
    s.libxc_end()
    return s


def extras(libxl):
    """Records Xen's spec allows that Xen 4.17's tools refuse or never send
    forward: TOOLSTACK (deprecated), CHECKPOINT_DIRTY_PFN_LIST (the COLO back
    channel), unknown optional records; an empty HVM_PARAMS (the errata)."""
    s = xs.Stream(xs.HVM, 3, libxl)
    s.libxc_start()
    s.cpuid_policy(CPUID[:1])
    s.msr_policy(MSRS[:1])
    s.static_data_end()
    s.optional(0x80000123, b"a record of a later Xen")
    s.send_pages([data(pfn) for pfn in range(64)])
    s.toolstack(blob(b"TOOLSTACK", 100))
    s.dirty_pfn_list([1, 2, 3, 0x100000])
    s.tsc_info(0, 1000000, 1, 0)
    s.hvm_params([])
    s.optional(0x80000124, b"")
    s.hvm_params([(1, 0xFEFFC)])
    s.hvm_context(blob(b"CTX", 64))
    s.libxc_end()
    if libxl:
        s.libxl_optional(0x80000042, b"a libxl record of a later Xen")
        s.checkpoint_state(1)
        s.emulator_xenstore(xs.EMU_QEMU_TRADITIONAL, 1, [])
        s.emulator_context(xs.EMU_QEMU_TRADITIONAL, 1, blob(b"TRAD", 33))
        s.libxl_end()
    return s


FIXTURES = [
    ("hvm-libxl", "libxl", "fixed", lambda: hvm(True)),
    ("hvm-libxc", "libxc", "pass", lambda: hvm(False)),
    ("pv64-libxc", "libxc", "pass", lambda: pv(8)),
    ("pv32-libxc", "libxc", "pass", lambda: pv(4)),
    ("remus-libxc", "libxc", "pass", lambda: remus(False)),
    # verify-stream-v2 reads the libxc stream to its END and cannot follow
    # the libxl records of a checkpoint.
    ("remus-libxl", "libxl", "no", lambda: remus(True)),
    ("verify-libxc", "libxc", "pass", verify),
    ("v2-libxc", "libxc", "pass", v2),
    ("extras-libxc", "libxc", "no", lambda: extras(False)),
    ("extras-libxl", "libxl", "no", lambda: extras(True)),
]


def main():
    out, only = sys.argv[1], set(sys.argv[2:])
    unknown = only - {f[0] for f in FIXTURES}
    if unknown:
        print("mkxen.py: no stream named %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    lines = []
    for name, fmt, verdict, make in FIXTURES:
        if only and name not in only:
            continue
        s = make()
        with open(os.path.join(out, name + ".xen"), "wb") as f:
            f.write(s.bytes())
        with open(os.path.join(out, name + ".expect"), "w") as f:
            f.write(s.model.expect())
        lines.append("%s %s %s\n" % (name, fmt, verdict))
    with open(os.path.join(out, "fixtures.txt"), "w") as f:
        f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
