#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_xen: small Xen streams of every kind.

Usage: make-xen-corpus.py OUT_DIR

The streams come from tests/pylib/xenstream.py (Xen's specs, not the
library): HVM and PV (64 and 32-bit) guests, libxl-wrapped and bare,
checkpoints, a VERIFY pass, version 2, and the records Xen 4.17 no longer
sends forward (TOOLSTACK, CHECKPOINT_DIRTY_PFN_LIST, unknown optional
ones), each with a few pages so that it stays under 64 KiB. Files are
named after their SHA-1, as libFuzzer names its own.
"""
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "pylib"))
import xenstream as xs  # noqa: E402


def page(pfn, gen=0):
    return xs.page_bytes(pfn, gen, zero=pfn % 3 == 0)


def hvm(libxl, version=3, checkpoints=0, verify=False, extras=False):
    s = xs.Stream(xs.HVM, version, libxl)
    s.libxc_start()
    if version >= 3:
        s.cpuid_policy([(0, 0xFFFFFFFF, 0xD, 1, 2, 3)])
        s.msr_policy([(0xCE, 0, 0x80000000)])
        s.static_data_end()
    if extras:
        s.optional(0x80000123, b"later")
        s.toolstack(b"toolstack")
        s.dirty_pfn_list([1, 2])
    s.send_pages([(p, xs.NOTAB, page(p)) for p in range(4)] + [(4, xs.XTAB, None)])
    s.send_pages([(1, xs.NOTAB, page(1, 1))])
    for c in range(checkpoints):
        s.tsc_info(0, 1000, c, 1)
        s.hvm_params([(1, 0xFEFFC)])
        s.hvm_context(b"ctx%d" % c)
        s.checkpoint()
        if libxl:
            s.emulator_context(xs.EMU_QEMU_UPSTREAM, 0, b"QEVM%d" % c)
            s.checkpoint_state(c % 4)
            s.checkpoint_end()
        s.send_pages([(2, xs.NOTAB, page(2, c + 2))])
    s.tsc_info(0, 1000, 5, 1)
    s.hvm_params([] if extras else [(1, 0xFEFFC), (5, 0xFEFF0)])
    if extras:
        s.hvm_params([(1, 0xFEFFC)])
    s.hvm_context(b"HVM context")
    if verify:
        s.verify()
        s.send_pages([(p, xs.NOTAB, page(p)) for p in range(4)])
    s.libxc_end()
    if libxl:
        if extras:
            s.libxl_optional(0x80000042, b"later")
        s.emulator_xenstore(xs.EMU_QEMU_UPSTREAM, 0, [(b"k", b"v")])
        s.emulator_context(xs.EMU_QEMU_UPSTREAM, 0, b"QEVM")
        s.libxl_end()
    return s.bytes()


def pv(width):
    s = xs.Stream(xs.PV, 3, libxl=False)
    s.libxc_start()
    s.x86_pv_info(width, 4 if width == 8 else 3)
    s.static_data_end()
    s.p2m_frames(0, 7)
    top = xs.L4TAB_PIN if width == 8 else xs.L3TAB_PIN
    s.send_pages([(0, top, page(0)), (1, xs.L1TAB, page(1)), (2, xs.XALLOC, None),
                  (3, xs.BROKEN, None), (4, xs.XTAB, None), (5, xs.NOTAB, page(5))])
    s.p2m_frames(0, 9 * 4096 // width)
    s.send_pages([(1, xs.NOTAB, page(1, 1)), (6, xs.L2TAB, page(6))])
    s.tsc_info(1, 1000, 1, 1)
    s.shared_info(page(0xFFFF))
    s.vcpu(xs.X86_PV_VCPU_BASIC, 0, b"basic" * 10)
    s.vcpu(xs.X86_PV_VCPU_EXTENDED, 0, b"")
    s.vcpu(xs.X86_PV_VCPU_XSAVE, 0, bytes(16))
    s.vcpu(xs.X86_PV_VCPU_MSRS, 0, struct.pack("<IIQ", 0xC0000080, 0, 1))
    s.libxc_end()
    return s.bytes()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = [hvm(True), hvm(False), hvm(False, version=2), hvm(True, checkpoints=2),
             hvm(False, checkpoints=2), hvm(False, verify=True), hvm(True, extras=True),
             hvm(False, extras=True), pv(8), pv(4)]
    for b in seeds:
        assert len(b) < 65536
        with open(os.path.join(out, hashlib.sha1(b).hexdigest()), "wb") as f:
            f.write(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
