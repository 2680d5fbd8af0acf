#!/usr/bin/env python3
"""Rebuilds, independently of the library, the guest memory that
tests/cli/gen-streams.c puts in its sample streams (make_guest()), so that
the images migstream-replay writes can be compared byte for byte.

    guest.py basic|changed DIR   writes DIR/pc.ram.img and DIR/vga.vram.img

Prints the number of non-zero pages of each region.
"""
import struct
import sys

PS = 4096
RAM_PAGES, VRAM_PAGES = 1024, 64
M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed

    def __call__(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def make_guest(changed):
    rng = SplitMix64(42)
    ram = bytearray(RAM_PAGES * PS)
    vram = bytearray(VRAM_PAGES * PS)
    for p in range(RAM_PAGES):
        r = rng()
        base = p * PS
        if r % 10 < 7:
            continue  # zero page
        if r % 10 == 7:
            ram[base + (r >> 8) % PS] = ((r >> 20) | 1) & 0xFF  # one non-zero byte
            continue
        ram[base:base + PS] = b"".join(struct.pack("<Q", rng()) for _ in range(PS // 8))
    vram[3 * PS + 17] = 0x55
    if changed:
        ram[5 * PS] ^= 0xFF
        ram[6 * PS + 4095] ^= 0x01
        ram[100 * PS:101 * PS] = bytes(PS)
        ram[900 * PS:901 * PS] = b"\xcc" * PS
    return ram, vram


def nonzero_pages(img):
    zero = bytes(PS)
    return sum(img[i:i + PS] != zero for i in range(0, len(img), PS))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("basic", "changed"):
        sys.exit("usage: guest.py basic|changed DIR")
    ram, vram = make_guest(sys.argv[1] == "changed")
    for name, img in (("pc.ram", ram), ("vga.vram", vram)):
        with open("%s/%s.img" % (sys.argv[2], name), "wb") as f:
            f.write(img)
        print("%s: %d non-zero pages of %d" % (name, nonzero_pages(img), len(img) // PS))


if __name__ == "__main__":
    main()
