#!/usr/bin/env python3
"""Writes the guest inputs of the QEMU captures and of tests/qemu-loop.sh.

    scripts/guest-files.py DIR

DIR/pattern.bin: 8 KiB, byte i is (7 * i + 3) mod 256; loaded with
-device loader at guest-physical 0x100000 (tests/qemu/test_import_qemu.c
computes the same bytes).

DIR/boot.bin: a 512-byte boot sector (16-bit real mode, loaded at 0x7c00)
that keeps writing a counter into two words of each of 64 pages from
0x10000:
      cli; xor ax,ax; mov ds,ax
    l: mov eax,cr0; xor eax,0x10000; mov cr0,eax
       inc bx; mov dx,0x1000
    n: mov es,dx; mov [es:0],bx; mov [es:0x800],bx
       add dx,0x100; cmp dx,0x5000; jb n; jmp l
Toggling CR0.WP flushes TCG's TLB: without KVM, a page whose TLB entry was
filled while it was dirty is written without being marked dirty again, and
a migration would converge after one pass.
"""
import os
import sys

if len(sys.argv) != 2:
    sys.exit("usage: guest-files.py DIR")
out = sys.argv[1]
with open(os.path.join(out, "pattern.bin"), "wb") as f:
    f.write(bytes((7 * i + 3) & 0xFF for i in range(8192)))
code = bytes.fromhex("fa31c08ed8" "0f20c0" "663500000100" "0f22c0" "43ba0010" "8ec2"
                     "26891e0000" "26891e0008" "81c20001" "81fa0050" "72ea" "ebd8")
with open(os.path.join(out, "boot.bin"), "wb") as f:
    f.write(code + bytes(510 - len(code)) + b"\x55\xaa")
