"""CRC-64/XZ as OSS uses it: known vectors, oss2's own crc64 as the oracle, combine, memoryviews."""

from __future__ import annotations

import doctest
import importlib
import itertools
import random

import oss2.utils as oss2_utils  # the oracle (a test dependency via objget[oss])
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends import Checksummer
from objget.integrity import Crc64, crc64_combine
from objget.integrity.crc64 import CRC64_CHECK, crc64


def oss2_crc64(data: bytes) -> int:
    c = oss2_utils.Crc64()
    c.update(data)
    return int(c.crc)


def test_check_value() -> None:
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA == CRC64_CHECK


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0),
        (b"a", 0x330284772E652B05),
        (b"hello world", 0x53037ECDEF2352DA),
    ],
)
def test_vectors_match_oss2(data: bytes, expected: int) -> None:
    assert oss2_crc64(data) == expected  # the vectors themselves come from oss2
    assert crc64(data) == expected


def test_equals_oss2_on_random_data() -> None:
    rng = random.Random(4)
    for size in (1, 7, 8, 15, 16, 63, 64, 1000, 4096, 65537, 1 << 20, 3 * (1 << 20) + 5):
        data = rng.randbytes(size)
        assert crc64(data) == oss2_crc64(data), size


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_combine_is_crc_of_concatenation(a: bytes, b: bytes) -> None:
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)
    assert Crc64(expected=0).combine(crc64(a), crc64(b), len(b)) == crc64(a + b)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=300))
def test_combine_is_associative(a: bytes, b: bytes, c: bytes) -> None:
    left = crc64_combine(crc64_combine(crc64(a), crc64(b), len(b)), crc64(c), len(c))
    right = crc64_combine(crc64(a), crc64_combine(crc64(b), crc64(c), len(c)), len(b) + len(c))
    assert left == right == crc64(a + b + c)


def test_combine_large_lengths_match_oss2_combine() -> None:
    """Lengths far beyond the data we can hash here: compare with oss2's own combine."""
    oracle = oss2_utils.Crc64()
    rng = random.Random(7)
    for _ in range(50):
        a, b = rng.getrandbits(64), rng.getrandbits(64)
        n = rng.choice([1 << 30, (1 << 40) + 12345, rng.getrandbits(48), 0, 1])
        assert crc64_combine(a, b, n) == oracle.combine(a, b, n)


def test_combine_zero_length_is_identity() -> None:
    assert crc64_combine(12345, 0, 0) == 12345


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=5000), st.data())
def test_running_update_over_memoryview_slices(data: bytes, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    summer = Crc64(expected=crc64(data))
    view = memoryview(bytearray(data))  # a writable buffer, as the engine's is
    crc = 0
    for lo, hi in itertools.pairwise(bounds):
        crc = summer.update(crc, view[lo:hi])
    assert crc == summer.expected


def test_per_range_crcs_combine_to_whole_object() -> None:
    rng = random.Random(11)
    data = rng.randbytes(3 * (1 << 20) + 17)
    view = memoryview(data)
    summer = Crc64(expected=oss2_crc64(data))
    edges = sorted({0, len(data), *(rng.randrange(len(data)) for _ in range(9))})
    total = 0
    for lo, hi in itertools.pairwise(edges):
        part = 0
        for off in range(lo, hi, 65536):  # each range hashed in buffer-sized chunks
            part = summer.update(part, view[off : min(off + 65536, hi)])
        total = summer.combine(total, part, hi - lo)
    assert total == summer.expected


def test_is_a_checksummer() -> None:
    summer: Checksummer = Crc64(expected=CRC64_CHECK)
    assert summer.name == "crc64ecma"
    assert summer.expected == CRC64_CHECK
    assert "expected=" in repr(summer)


def test_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        Crc64(expected=1 << 64)
    with pytest.raises(ValueError):
        crc64(b"x", -1)
    with pytest.raises(ValueError):
        crc64_combine(1, 2, -1)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import sys

    module = importlib.import_module("objget.integrity.crc64")
    real_import = builtins.__import__

    def no_fastcrc(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("fastcrc"):
            raise ImportError("no fastcrc here")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    module._xz.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_fastcrc)
    for name in [m for m in sys.modules if m.startswith("fastcrc")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        with pytest.raises(ModuleNotFoundError, match=r"objget\[oss\]"):
            Crc64(expected=0)
    finally:
        module._xz.cache_clear()


def test_doctests() -> None:
    module = importlib.import_module("objget.integrity.crc64")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
