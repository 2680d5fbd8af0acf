#!/usr/bin/env python3
"""Expected migstream-diff text output for gen-streams samples, computed from
gen-streams.c's inputs alone (its splitmix64 guest, the changes of
make_guest(changed) and the small() sample), not from any stream: an
independent check of the golden files.

    expect.py changed | changed-reverse | small-vs-basic | empty-guest | partial

(partial: basic.mig vs partial.mig, basic without pc.ram pages 1000..1023,
never sent.) Page states come out as migstream-diff prints them: DATA and
ZERO in upper case, missing in lower case. Each case runs this and fails
(exit 99) when the tool's output is not what it prints.
"""
import sys

RAM_PAGES, PS = 1024, 4096
MASK = (1 << 64) - 1


def basic_pages():
    """pc.ram of make_guest(): page -> ('zero', None) or ('data', bytes-key)."""
    state = 42

    def rng():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    pages = []
    for p in range(RAM_PAGES):
        r = rng()
        if r % 10 < 7:
            pages.append(("zero", None))
        elif r % 10 == 7:
            # one non-zero byte at (r >> 8) % PS
            pages.append(("data", ("one", (r >> 8) % PS, (r >> 20 | 1) & 0xFF)))
        else:
            pages.append(("data", ("random", tuple(rng() for _ in range(PS // 8)))))
    return pages


def changed_pages(base):
    """make_guest(changed): byte 0 of page 5 ^= 0xff, byte 4095 of page 6 ^= 1,
    page 100 zeroed, page 900 all 0xcc. Pages 5 and 6 must be zero in basic
    for the keys below to hold (asserted)."""
    pages = list(base)
    assert base[5][0] == "zero" and base[6][0] == "zero"
    pages[5] = ("data", ("one", 0, 0xFF))
    pages[6] = ("data", ("one", 4095, 0x01))
    pages[100] = ("zero", None)
    pages[900] = ("data", ("fill", 0xCC))
    return pages


def shown(state):
    """A page state as migstream-diff prints it: FORMAT.md's upper-case
    name; "missing" (never sent, not a state) in lower case."""
    return state if state == "missing" else state.upper()


def memory_lines(name, a, b):
    """a, b: lists of (state, key) per page, None past a region's end."""
    out, run = [], None
    for p in range(max(len(a), len(b))):
        sa = a[p] if p < len(a) else ("missing", None)
        sb = b[p] if p < len(b) else ("missing", None)
        if sa[0] != sb[0]:
            kind = (sa[0], sb[0])
        elif sa[0] == "data" and sa[1] != sb[1]:
            kind = ("data", "data")
        else:
            kind = None
        if kind and run and run[0] == kind and run[2] == p - 1:
            run[2] = p
        elif kind:
            if run:
                out.append(run)
            run = [kind, p, p]
        else:
            if run:
                out.append(run)
            run = None
    if run:
        out.append(run)
    lines = []
    for (ka, kb), first, last in out:
        what = "data differs" if ka == kb else f"{shown(ka)} -> {shown(kb)}"
        n = last - first + 1
        where = f"page {first}" if n == 1 else f"pages {first}..{last}"
        lines.append(f"memory {name} {where}: {what} ({n} page{'s' if n > 1 else ''})")
    if out:
        total = sum(r[2] - r[1] + 1 for r in out)
        lines.append(f"memory {name}: {total} page{'s differ' if total > 1 else ' differs'} "
                     f"in {len(out)} range{'s' if len(out) > 1 else ''}")
    return lines, sum(r[2] - r[1] + 1 for r in out), len(out)


def counts(pages):
    d = sum(1 for s, _ in pages if s == "data")
    return d, len(pages) - d


def main(mode):
    base = basic_pages()
    if mode in ("changed", "changed-reverse"):
        a, b = base, changed_pages(base)
        rip = (65520, 31744)  # 0xfff0 -> 0x7c00
        if mode == "changed-reverse":
            a, b, rip = b, a, rip[::-1]
        lines, pages, ranges = memory_lines("pc.ram", a, b)
        lines.append(f"device cpu#0 state/rip: {rip[0]} -> {rip[1]}")
        lines.append(f"different: metadata 0, regions 0, pages {pages} in {ranges} ranges, "
                     "devices 1")
    elif mode == "empty-guest":
        d, z = counts(base)
        lines = [
            f"region pc.ram: only in A (id 0, size {RAM_PAGES * PS}, page_size 4096, gpa 0x0): "
            f"{d} DATA, {z} ZERO, 0 missing pages",
            # vram: one 0x55 byte in page 3
            "region vga.vram: only in A (id 1, size 262144, page_size 4096, gpa (none)): "
            "1 DATA, 63 ZERO, 0 missing pages",
            'device cpu#0: only in A (schema "x86-cpu", version 1)',
            'device pci0/0000:00:02.0/virtio-net#0: only in A (schema "virtio-net", version 2)',
            "different: metadata 0, regions 2, pages 0 in 0 ranges, devices 2",
        ]
    elif mode == "small-vs-basic":
        # small(): ram is 16 pages, p % 3 == 0 filled with 'a' + p, others zero
        small = [("data", ("fill", ord("a") + p)) if p % 3 == 0 else ("zero", None)
                 for p in range(16)]
        lines = [
            'meta machine: (none) -> "pc-q35-7.2"',
            'meta description: "small seed" -> (none)',
            'region ram name: "ram" -> "pc.ram"',
            f"region ram size: {16 * PS} -> {RAM_PAGES * PS}",
        ]
        mem, pages, ranges = memory_lines("ram", small, base)
        lines += mem
        lines += [
            # huge: 2 MiB pages, page 1 data (byte 12345 = 1), page 0 zero
            "region huge: only in A (id 7, size 4194304, page_size 2097152, gpa 0x100000000): "
            "1 DATA, 1 ZERO, 0 missing pages",
            "region vga.vram: only in B (id 1, size 262144, page_size 4096, gpa (none)): "
            "1 DATA, 63 ZERO, 0 missing pages",
            "device cpu#0 state/rip: 4096 -> 65520",  # cpu_state(0x1000) vs (0xfff0)
            'device cpu#1: only in A (schema "x86-cpu", version 1)',
            'device pci0/0000:00:02.0/virtio-net#0: only in B (schema "virtio-net", version 2)',
            f"different: metadata 2, regions 4, pages {pages} in {ranges} ranges, devices 3",
        ]
    elif mode == "partial":
        lines, pages, ranges = memory_lines("pc.ram", base, base[:1000])
        lines.append(f"different: metadata 0, regions 0, pages {pages} in {ranges} ranges, "
                     "devices 0")
    else:
        sys.exit(f"expect.py: unknown mode {mode}")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
