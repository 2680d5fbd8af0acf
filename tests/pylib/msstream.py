"""Writing libmigstream streams byte by byte from docs/FORMAT.md, for the
tests that need streams the library's writer never makes (later format
versions, damage, pages never sent) and an implementation of the framing
apart from the library's. The one module the tests' Python stream writers
share (tests/compat/mkfuture.py, tests/cli/*/mk*.py, restamp.py).

XXH3-64 comes from the system's libxxhash, the one the library links.
"""
import ctypes
import struct

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed):
    """XXH3-64 of @data with @seed (FORMAT.md section 4.2)."""
    return _xxh.XXH3_64bits_withSeed(bytes(data), len(data), seed)


# ---- CBOR in the profile of FORMAT.md section 10, shortest forms

def head(major, v):
    """A CBOR item head: major type and argument, shortest form."""
    if v < 24:
        return bytes([major << 5 | v])
    for n, ai in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if v < 1 << (8 * n):
            return bytes([major << 5 | ai]) + v.to_bytes(n, "big")
    raise ValueError(v)


def cbor(x):
    """Encodes @x. Maps keep their insertion order: the format's own maps are
    written with ascending keys by the caller."""
    if x is True:
        return b"\xf5"
    if x is False:
        return b"\xf4"
    if x is None:
        return b"\xf6"
    if isinstance(x, int):
        return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return head(3, len(b)) + b
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(cbor(i) for i in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(cbor(k) + cbor(v) for k, v in x.items())
    raise TypeError(x)


# ---- the format's numbers

INFO, REGIONS, PAGES, DEVICE, END, ROUND, OVERLAY = 1, 2, 3, 4, 5, 6, 7  # section 4.3
DATA, ZERO, DISCARDED, FILL, IN_PLACE = 1, 2, 3, 4, 5  # section 6.2
MUST = 1  # the MUST_UNDERSTAND record flag (section 4.1)
F_DISCARDED, F_FILL, F_IN_PLACE, F_OVERLAYS = 1, 2, 4, 8  # required feature bits (3.2)
MAGIC = b"\x89MIGS\r\n\x1a"


def region(rid, name, gpa, size, page_size):
    """One region map (section 5.2); @gpa None: no guest-physical address."""
    m = {0: rid, 1: name}
    if gpa is not None:
        m[2] = gpa
    m[3] = size
    m[4] = page_size
    return m


class Stream:
    """A stream being written: preamble (section 3), then records chained
    by their checksums (section 4), with the totals END needs (section 8)
    counted as records go out."""

    def __init__(self, name, version, major=1, minor=0, required=0, optional=0,
                 page_size=4096, extension=b""):
        """@extension: bytes between offset 104 and the checksum, a later
        minor's longer preamble (section 3.1)."""
        size = 112 + len(extension)
        assert size % 8 == 0
        p = MAGIC + struct.pack("<HHIQQII", major, minor, size, required, optional, page_size, 0)
        p += name.encode().ljust(32, b"\0") + version.encode().ljust(32, b"\0") + extension
        self.chain = xxh3(p, 0)
        self.out = bytearray(p + struct.pack("<Q", self.chain))
        self.records = 0
        self.pages = {}
        self.devices = self.rounds = self.overlays = 0

    def record(self, rtype, flags, payload, bad_checksum=False):
        """Appends a record; @bad_checksum stores a checksum one bit off,
        from which the chain goes on (section 4.2)."""
        hdr = struct.pack("<HHI", rtype, flags, len(payload))
        self.chain = xxh3(hdr + payload, self.chain) ^ (1 if bad_checksum else 0)
        self.out += hdr + struct.pack("<Q", self.chain) + payload
        self.records += 1

    def info(self, machine=None, description=None):
        m = {}
        if machine is not None:
            m[0] = machine
        if description is not None:
            m[1] = description
        self.record(INFO, 0, cbor(m))

    def regions(self, *maps):
        """A REGIONS record of region maps (region() makes them)."""
        self.record(REGIONS, MUST, cbor(list(maps)))

    def pages_rec(self, rid, extents, data=b"", bad_checksum=False, count=True):
        """A PAGES record (section 6), raw data: @extents are (first, count,
        state, arg) and @data the DATA pages' bytes. @count False leaves the
        pages out of END's totals."""
        p = struct.pack("<IIB7x", rid, len(extents), 0)
        for first, n, state, arg in extents:
            p += struct.pack("<QIB3xQ", first, n, state, arg)
            if count:
                self.pages[state] = self.pages.get(state, 0) + n
        self.record(PAGES, MUST, p + data, bad_checksum)

    def device(self, path, instance, schema, version, state, count=True):
        """A DEVICE record whose state is the encoded CBOR item @state,
        embedded as is (section 7)."""
        payload = head(5, 5) + cbor(0) + cbor(path) + cbor(1) + cbor(instance)
        payload += cbor(2) + cbor(schema) + cbor(3) + cbor(version) + cbor(4) + state
        self.device_map(payload, count)

    def device_map(self, payload, count=True):
        """A DEVICE record of an encoded map, extra keys and all."""
        self.record(DEVICE, MUST, payload)
        if count:
            self.devices += 1

    def round(self, fields):
        self.record(ROUND, 0, cbor(fields))
        self.rounds += 1

    def overlay(self, maps):
        self.record(OVERLAY, MUST, cbor(maps))
        self.overlays += len(maps)

    def end(self, extra=None, records=None, devices=None):
        """The END record with the totals so far (section 8); @extra: keys
        after the ones the section defines, ascending; @records, @devices:
        counts to claim instead of the true ones. Returns the stream."""
        m = {0: self.records if records is None else records, 1: len(self.out),
             2: {k: v for k, v in sorted(self.pages.items()) if v},
             3: self.devices if devices is None else devices}
        if self.rounds:
            m[4] = self.rounds
        if self.overlays:
            m[5] = self.overlays
        m.update(extra or {})
        self.record(END, MUST, cbor(m))
        return bytes(self.out)


def rechain(b):
    """Recomputes, in the bytearray @b, the preamble checksum and every
    record's chained checksum (sections 3.1 and 4.2), after an edit."""
    hsize = struct.unpack_from("<I", b, 12)[0]
    seed = xxh3(b[: hsize - 8], 0)
    struct.pack_into("<Q", b, hsize - 8, seed)
    pos = hsize
    while pos < len(b):
        length = struct.unpack_from("<I", b, pos + 4)[0]
        seed = xxh3(b[pos: pos + 8] + b[pos + 16: pos + 16 + length], seed)
        struct.pack_into("<Q", b, pos + 8, seed)
        pos += 16 + length
    return b
