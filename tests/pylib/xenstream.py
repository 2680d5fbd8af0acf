"""Xen migration streams v2, written byte by byte from Xen's specs.

An independent writer for the tests: it follows Xen's
docs/specs/libxc-migration-stream.pandoc (revision 3) and
libxl-migration-stream.pandoc (revision 2), not libmigstream's code, so that
the importer is checked against a second reading of the format.

- headers are big-endian, records little-endian: u32 type, u32 body length,
  the body, zeros to a multiple of 8 bytes;
- PAGE_DATA: u32 count, u32 reserved, count u64 entries (type << 60 | pfn),
  then 4096 bytes for each entry whose type carries data (NOTAB and the
  page tables L1-L4, pinned or not);
- every other record's body is laid out as the spec's section 4 (libxc) and
  5 (libxl) draw it.

Besides the bytes, a Stream keeps the guest state the stream leaves behind,
as the mapping of docs/XEN.md says a libmigstream stream holds it, so that a
test can compare an import with it: see Model.
"""
import struct

# ---------------------------------------------------------------- constants

LIBXL_IDENT = 0x4C6962786C466D74  # "LibxlFmt"
IHDR_MARKER = 0xFFFFFFFFFFFFFFFF
IHDR_ID = 0x58454E46  # "XENF"
PV, HVM = 1, 2

# libxc record types (spec section 4)
END, PAGE_DATA, X86_PV_INFO, X86_PV_P2M_FRAMES = 0, 1, 2, 3
X86_PV_VCPU_BASIC, X86_PV_VCPU_EXTENDED, X86_PV_VCPU_XSAVE = 4, 5, 6
SHARED_INFO, X86_TSC_INFO, HVM_CONTEXT, HVM_PARAMS, TOOLSTACK = 7, 8, 9, 10, 11
X86_PV_VCPU_MSRS, VERIFY, CHECKPOINT, CHECKPOINT_DIRTY_PFN_LIST = 12, 13, 14, 15
STATIC_DATA_END, X86_CPUID_POLICY, X86_MSR_POLICY = 16, 17, 18
OPTIONAL = 0x80000000

# libxl record types (libxl spec section 4)
XL_END, LIBXC_CONTEXT, EMULATOR_XENSTORE_DATA, EMULATOR_CONTEXT = 0, 1, 2, 3
CHECKPOINT_END, CHECKPOINT_STATE = 4, 5

# XEN_DOMCTL_PFINFO_* page types (bits 60-63 of a pfn entry)
NOTAB, L1TAB, L2TAB, L3TAB, L4TAB = 0x0, 0x1, 0x2, 0x3, 0x4
L1TAB_PIN, L2TAB_PIN, L3TAB_PIN, L4TAB_PIN = 0x9, 0xA, 0xB, 0xC
BROKEN, XALLOC, XTAB = 0xD, 0xE, 0xF
DATA_TYPES = {NOTAB, L1TAB, L2TAB, L3TAB, L4TAB, L1TAB_PIN, L2TAB_PIN, L3TAB_PIN, L4TAB_PIN}

EMU_UNKNOWN, EMU_QEMU_TRADITIONAL, EMU_QEMU_UPSTREAM = 0, 1, 2
EMU_NAMES = {0: "unknown", 1: "qemu-traditional", 2: "qemu-upstream"}

LIBXC_NAMES = {
    X86_PV_INFO: "X86_PV_INFO", X86_PV_P2M_FRAMES: "X86_PV_P2M_FRAMES",
    X86_PV_VCPU_BASIC: "X86_PV_VCPU_BASIC", X86_PV_VCPU_EXTENDED: "X86_PV_VCPU_EXTENDED",
    X86_PV_VCPU_XSAVE: "X86_PV_VCPU_XSAVE", SHARED_INFO: "SHARED_INFO",
    X86_TSC_INFO: "X86_TSC_INFO", HVM_CONTEXT: "HVM_CONTEXT", HVM_PARAMS: "HVM_PARAMS",
    TOOLSTACK: "TOOLSTACK", X86_PV_VCPU_MSRS: "X86_PV_VCPU_MSRS", VERIFY: "VERIFY",
    CHECKPOINT: "CHECKPOINT", CHECKPOINT_DIRTY_PFN_LIST: "CHECKPOINT_DIRTY_PFN_LIST",
    STATIC_DATA_END: "STATIC_DATA_END", X86_CPUID_POLICY: "X86_CPUID_POLICY",
    X86_MSR_POLICY: "X86_MSR_POLICY",
}
LIBXL_NAMES = {EMULATOR_XENSTORE_DATA: "EMULATOR_XENSTORE_DATA",
               EMULATOR_CONTEXT: "EMULATOR_CONTEXT", CHECKPOINT_END: "CHECKPOINT_END",
               CHECKPOINT_STATE: "CHECKPOINT_STATE"}
VCPU_KINDS = {X86_PV_VCPU_BASIC: "basic", X86_PV_VCPU_EXTENDED: "extended",
              X86_PV_VCPU_XSAVE: "xsave", X86_PV_VCPU_MSRS: "msrs"}

PAGE = 4096
TIB = 1 << 40


def fnv64(data):
    """FNV-1a, 64 bits: how the expectations name page and record contents."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def page_bytes(pfn, gen, zero=False):
    """Deterministic contents of page @pfn in its @gen-th copy."""
    if zero:
        return bytes(PAGE)
    head = struct.pack("<QQ", pfn, gen)
    body = bytes(((pfn * 131 + gen * 31 + i * 7) & 0xFF) for i in range(PAGE - 16))
    return head + body


def record(rtype, body=b""):
    """One record: header, body, zero padding to 8 bytes (spec section 4)."""
    pad = (-len(body)) % 8
    return struct.pack("<II", rtype, len(body)) + body + b"\0" * pad


# ---------------------------------------------------------------- the model


class Model:
    """The state an import of the stream leaves behind (docs/XEN.md): pages
    by pfn, devices by (path, instance) with their raw bytes, the regions,
    the rounds, and the page types a page's state does not say (page
    tables, XALLOC, BROKEN), kept per block of 4096 pfns: a block whose
    types ever changed has a device "xen/page_types" with its final ones."""

    def __init__(self):
        self.pages = {}  # pfn -> ("data", bytes) | ("zero",) | ("discarded",)
        self.devices = {}  # (path, instance) -> (schema, raw)
        self.regions = []  # (name, gpa, size)
        self.rounds = 0
        self.any_page = False
        self.last_pfn = None
        self.force_round = False
        self.ordinals = {}
        self.types = {}  # pfn -> kept type
        self.type_blocks = set()  # blocks whose types changed

    def ordinal(self, key):
        n = self.ordinals.get(key, 0)
        self.ordinals[key] = n + 1
        return n

    def device(self, path, instance, schema, raw):
        self.devices[(path, instance)] = (schema, raw)

    def page(self, pfn, ptype, data):
        if not self.any_page or self.force_round or pfn <= self.last_pfn:
            self.rounds += 1
        self.any_page = True
        self.force_round = False
        self.last_pfn = pfn
        if ptype in DATA_TYPES:
            self.pages[pfn] = ("zero",) if data == bytes(PAGE) else ("data", data)
        elif ptype == XALLOC:
            self.pages[pfn] = ("zero",)
        else:
            self.pages[pfn] = ("discarded",)

    def set_type(self, pfn, ptype):
        kept = ptype not in (NOTAB, XTAB)
        old = self.types.get(pfn)
        if kept and old != ptype:
            self.types[pfn] = ptype
            self.type_blocks.add(pfn >> 12)
        elif not kept and old is not None:
            del self.types[pfn]
            self.type_blocks.add(pfn >> 12)

    def type_devices(self):
        for block in self.type_blocks:
            pfns = sorted(p for p in self.types if p >> 12 == block)
            raw = b"".join(struct.pack("<Q", (self.types[p] << 60) | p) for p in pfns)
            self.device("xen/page_types", block, "PAGE_DATA", raw)

    def expect(self):
        """The expectations as text, one item a line (tests/xen/README)."""
        self.type_devices()
        out = []
        for name, gpa, size in self.regions:
            out.append("region %s %d %d" % (name, gpa, size))
        out.append("rounds %d" % self.rounds)
        for pfn in sorted(self.pages):
            p = self.pages[pfn]
            if p[0] == "data":
                out.append("page %d data %016x" % (pfn, fnv64(p[1])))
            else:
                out.append("page %d %s" % (pfn, p[0]))
        for (path, inst) in sorted(self.devices):
            schema, raw = self.devices[(path, inst)]
            out.append("device %s %d %s %d %016x" % (path, inst, schema, len(raw), fnv64(raw)))
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- streams


class Stream:
    """A Xen stream being written: bare libxc, or wrapped in libxl."""

    def __init__(self, domain=HVM, version=3, libxl=True, xen=(4, 17),
                 guest_bytes=TIB):
        self.domain = domain
        self.version = version
        self.libxl = libxl
        self.xen = xen
        self.guest_bytes = guest_bytes
        self.out = bytearray()
        self.model = Model()
        self.p2m_end = 0  # pfns covered so far (PV)
        self.in_libxc = False
        if libxl:
            hdr = struct.pack(">QII", LIBXL_IDENT, 2, 0)
            self.out += hdr
            self.model.device("xen/libxl/header", 0, "LIBXL_HEADER", hdr)

    # ---- framing

    def libxc_start(self):
        """LIBXC_CONTEXT (wrapped), then the image and domain headers."""
        if self.libxl:
            self.out += record(LIBXC_CONTEXT)
        ihdr = struct.pack(">QIIHHI", IHDR_MARKER, IHDR_ID, self.version, 0, 0, 0)
        dhdr = struct.pack("<IHHII", self.domain, 12, 0, self.xen[0], self.xen[1])
        self.out += ihdr + dhdr
        self.model.device("xen/header", 0, "LIBXC_HEADER", ihdr + dhdr)
        self.in_libxc = True
        if self.domain == HVM:
            self.model.regions.append(("pfn", 0, self.guest_bytes))

    def libxc(self, rtype, body=b"", path=None, instance=None, schema=None):
        """A libxc record, and the DEVICE it becomes."""
        self.out += record(rtype, body)
        if path is None:
            name = LIBXC_NAMES.get(rtype)
            if name is None:
                path = "xen/optional/0x%08x" % rtype
                schema = "OPTIONAL"
                instance = self.model.ordinal(("opt-libxc",))
            else:
                path = "xen/" + name.lower()
                schema = name
        if instance is None:
            instance = 0
        self.model.device(path, instance, schema, body)

    def libxl_rec(self, rtype, body=b"", path=None, instance=0, schema=None):
        self.out += record(rtype, body)
        if path is None:
            path = "xen/libxl/optional/0x%08x" % rtype
            schema = "OPTIONAL"
            instance = self.model.ordinal(("opt-libxl",))
        self.model.device(path, instance, schema, body)

    def libxc_end(self):
        self.out += record(END)
        self.in_libxc = False

    def libxl_end(self):
        self.out += record(XL_END)

    def bytes(self):
        return bytes(self.out)

    # ---- libxc records (spec section 4)

    def page_data(self, entries):
        """One PAGE_DATA record: entries (pfn, type, data or None)."""
        body = struct.pack("<II", len(entries), 0)
        body += b"".join(struct.pack("<Q", (t << 60) | pfn) for pfn, t, _ in entries)
        body += b"".join(d for _, t, d in entries if t in DATA_TYPES)
        self.out += record(PAGE_DATA, body)
        for pfn, t, _ in entries:
            self.model.set_type(pfn, t)
        for pfn, t, d in entries:
            self.model.page(pfn, t, d)

    def send_pages(self, pages, batch=1024):
        """Pages as Xen's saver sends an iteration: ascending pfns, batches
        of @batch entries. pages: (pfn, type, data or None)."""
        pages = sorted(pages)
        for i in range(0, len(pages), batch):
            self.page_data(pages[i:i + batch])

    def x86_pv_info(self, width=8, levels=4):
        self.libxc(X86_PV_INFO, struct.pack("<BBHI", width, levels, 0, 0))
        self.width = width

    def p2m_frames(self, start, end, frames=None):
        fpp = PAGE // self.width
        n = end // fpp - start // fpp + 1
        frames = frames if frames is not None else [0x1000 + i for i in range(n)]
        assert len(frames) == n
        body = struct.pack("<II", start, end) + b"".join(struct.pack("<Q", f) for f in frames)
        self.libxc(X86_PV_P2M_FRAMES, body,
                   instance=self.model.ordinal(("p2m",)))
        if end + 1 > self.p2m_end:
            name = "pfn" if self.p2m_end == 0 else "pfn-0x%x" % self.p2m_end
            self.model.regions.append((name, self.p2m_end * PAGE, (end + 1 - self.p2m_end) * PAGE))
            self.p2m_end = end + 1

    def vcpu(self, rtype, vcpu_id, context):
        body = struct.pack("<II", vcpu_id, 0) + context
        self.libxc(rtype, body, path="xen/vcpu/%d/%s" % (vcpu_id, VCPU_KINDS[rtype]),
                   schema=LIBXC_NAMES[rtype])

    def shared_info(self, data):
        assert len(data) == PAGE
        self.libxc(SHARED_INFO, data)

    def tsc_info(self, mode, khz, nsec, incarnation):
        self.libxc(X86_TSC_INFO, struct.pack("<IIQII", mode, khz, nsec, incarnation, 0))

    def hvm_context(self, blob):
        self.libxc(HVM_CONTEXT, blob)

    def hvm_params(self, params):
        body = struct.pack("<II", len(params), 0)
        body += b"".join(struct.pack("<QQ", i, v) for i, v in params)
        self.libxc(HVM_PARAMS, body)

    def toolstack(self, blob):
        self.libxc(TOOLSTACK, blob)

    def verify(self):
        self.libxc(VERIFY, instance=self.model.ordinal(("verify",)))
        self.model.force_round = True

    def checkpoint(self):
        self.libxc(CHECKPOINT, instance=self.model.ordinal(("checkpoint",)))
        self.model.force_round = True

    def dirty_pfn_list(self, pfns):
        body = b"".join(struct.pack("<Q", p) for p in pfns)
        self.libxc(CHECKPOINT_DIRTY_PFN_LIST, body, instance=self.model.ordinal(("dirty",)))

    def static_data_end(self):
        self.libxc(STATIC_DATA_END)

    def cpuid_policy(self, leaves):
        self.libxc(X86_CPUID_POLICY, b"".join(struct.pack("<IIIIII", *l) for l in leaves))

    def msr_policy(self, msrs):
        self.libxc(X86_MSR_POLICY, b"".join(struct.pack("<IIQ", *m) for m in msrs))

    def optional(self, rtype, body):
        assert rtype & OPTIONAL
        self.libxc(rtype, body)

    # ---- libxl records (libxl spec section 5)

    def emulator_xenstore(self, emu, index, pairs):
        data = b"".join(k + b"\0" + v + b"\0" for k, v in pairs)
        self.libxl_rec(EMULATOR_XENSTORE_DATA, struct.pack("<II", emu, index) + data,
                       path="xen/emulator/%s/xenstore" % EMU_NAMES[emu], instance=index,
                       schema="EMULATOR_XENSTORE_DATA")

    def emulator_context(self, emu, index, blob):
        self.libxl_rec(EMULATOR_CONTEXT, struct.pack("<II", emu, index) + blob,
                       path="xen/emulator/%s/context" % EMU_NAMES[emu], instance=index,
                       schema="EMULATOR_CONTEXT")

    def checkpoint_end(self):
        self.libxl_rec(CHECKPOINT_END, path="xen/libxl/checkpoint_end",
                       instance=self.model.ordinal(("ckpt-end",)), schema="CHECKPOINT_END")

    def checkpoint_state(self, control_id):
        self.libxl_rec(CHECKPOINT_STATE, struct.pack("<I", control_id),
                       path="xen/libxl/checkpoint_state",
                       instance=self.model.ordinal(("ckpt-state",)), schema="CHECKPOINT_STATE")

    def libxl_optional(self, rtype, body):
        assert rtype & OPTIONAL
        self.libxl_rec(rtype, body)
