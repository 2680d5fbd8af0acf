"""Device state between CBOR and Python values: the profile of FORMAT.md
section 10, deterministic encoding, and agreement with the library's own
CBOR code on the fuzz corpus."""

import math
import struct

import pytest

import migstream
from migstream import _migstream, cbor_decode, cbor_encode
from conftest import CPU_STATE, FUZZ_CORPUS


@pytest.mark.parametrize("value,hexed", [
    (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (65536, "1a00010000"),
    (2 ** 32, "1b0000000100000000"), (2 ** 64 - 1, "1bffffffffffffffff"),
    (-1, "20"), (-25, "3818"), (-(2 ** 64), "3bffffffffffffffff"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (0.0, "f90000"), (-0.0, "f98000"), (1.5, "f93e00"), (65504.0, "f97bff"),
    (100000.0, "fa47c35000"), (1.1, "fb3ff199999999999a"), (float("inf"), "f97c00"),
    (float("-inf"), "f9fc00"), (5.960464477539063e-08, "f90001"),
    ("", "60"), ("a", "6161"), ("ü", "62c3bc"), (b"", "40"), (b"\x01\x02", "420102"),
    ([], "80"), ([1, [2, 3]], "8201820203"), ((1, 2), "820102"),
    ({}, "a0"), ({"b": 1, "a": 2, 10: 3}, "a30a03616102616201"),
])
def test_deterministic_encoding(value, hexed):
    assert cbor_encode(value).hex() == hexed
    back = cbor_decode(bytes.fromhex(hexed))
    if isinstance(value, tuple):
        value = list(value)
    assert back == value and type(back) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, back) == math.copysign(1, value)


def test_nan_has_one_encoding():
    assert cbor_encode(float("nan")).hex() == "f97e00"
    assert math.isnan(cbor_decode(bytes.fromhex("fb7ff8000000000001")))


def test_keys_sort_by_their_encoding_whatever_the_dict_order():
    a = cbor_encode({"zz": 1, "a": 2, 100: 3, -1: 4, b"k": 5, (1, 2): 6})
    b = cbor_encode({(1, 2): 6, b"k": 5, -1: 4, 100: 3, "a": 2, "zz": 1})
    assert a == b
    assert cbor_decode(a) == {"zz": 1, "a": 2, 100: 3, -1: 4, b"k": 5, (1, 2): 6}


def test_buffers_encode_as_byte_strings():
    assert cbor_encode(bytearray(b"ab")) == cbor_encode(memoryview(b"ab")) == b"\x42ab"


def test_round_trip_through_the_library_text():
    """The library formats what the package encodes (ms_cbor_format)."""
    data = cbor_encode(CPU_STATE)
    assert cbor_decode(data) == CPU_STATE
    diag = _migstream.cbor_format(data, 0)
    assert '"rip": 65520' in diag and "h'0001" in diag


@pytest.mark.parametrize("hexed,why", [
    ("", "ends early"), ("18", "ends early"), ("1c", "reserved"), ("5f", "indefinite"),
    ("9f01ff", "indefinite"), ("c001", "tag"), ("f0", "simple value"), ("f820", "simple"),
    ("f7", "simple"), ("0101", "bytes after"), ("62c3", "longer than"),
    ("62c328", "UTF-8"), ("63eda080", "UTF-8"),  # a surrogate
    ("9a10000000", "more elements"), ("ba10000000", "more pairs"),
    ("a201", "more pairs"), ("a201010102", "holds already"),
    ("a1a00000", "a map used as a map key"),
])
def test_refused_items(hexed, why):
    with pytest.raises(migstream.CborError) as e:
        cbor_decode(bytes.fromhex(hexed))
    assert why in str(e.value)
    assert e.value.offset is not None


def test_nesting_is_bounded():
    deep = b"\x81" * 64 + b"\x00"
    assert cbor_decode(deep) is not None
    with pytest.raises(migstream.CborError):
        cbor_decode(b"\x81" * 65 + b"\x00")
    assert cbor_decode(b"\x81" * 200 + b"\x00", 256) is not None
    with pytest.raises(migstream.CborError):
        cbor_decode(b"\x81" * 257 + b"\x00", 256)
    nested = []
    for _ in range(70):
        nested = [nested]
    with pytest.raises(migstream.CborError) as e:
        cbor_encode(nested)
    assert "nesting" in str(e.value)
    loop = []
    loop.append(loop)
    with pytest.raises(migstream.CborError):
        cbor_encode(loop)
    with pytest.raises(ValueError):
        cbor_decode(b"\x00", 0)


def test_out_of_range_and_unknown_types():
    with pytest.raises(migstream.CborError):
        cbor_encode(2 ** 64)
    with pytest.raises(migstream.CborError):
        cbor_encode(-(2 ** 64) - 1)
    with pytest.raises(TypeError) as e:
        cbor_encode({"a": [1, object()]})
    assert "/'a'/1" in str(e.value)
    with pytest.raises(UnicodeEncodeError):
        cbor_encode("\ud800")


def test_half_and_single_floats_decode():
    assert cbor_decode(b"\xf9\x3c\x00") == 1.0
    assert cbor_decode(b"\xfa" + struct.pack(">f", 0.25)) == 0.25
    assert cbor_decode(b"\xfb" + struct.pack(">d", 0.1)) == 0.1


def corpus():
    d = FUZZ_CORPUS / "fuzz_cbor"
    return sorted(d.iterdir()) if d.is_dir() else []


def test_agrees_with_the_library_on_the_fuzz_corpus():
    """Every input of the CBOR fuzz corpus: the package's decoder refuses
    what the library refuses, and reads what it reads (but for what Python
    cannot hold: a key twice, a map as a key)."""
    files = corpus()
    if not files:
        pytest.skip("no fuzz corpus")
    agreed = 0
    for f in files:
        data = f.read_bytes()
        try:
            _migstream.cbor_format(data, 0, 256)
            library = True
        except migstream.Error:
            library = False
        try:
            cbor_decode(data, 256)
            package = True
        except migstream.CborError as e:
            package = False
            if library:
                assert "holds already" in str(e) or "map key" in str(e), (f.name, e)
                continue
        assert package == library, f.name
        agreed += 1
        if package:  # what decodes encodes again, and decodes to the same
            try:
                again = cbor_decode(cbor_encode(cbor_decode(data, 256), 256), 256)
            except migstream.CborError:
                continue  # a tuple key holding a float NaN ...
            first = cbor_decode(data, 256)
            assert cbor_encode(again, 256) == cbor_encode(first, 256), f.name
    assert agreed > len(files) // 2
