"""S3 full-object CRCs: check values, chaining, GF(2) combine (hypothesis), wire format."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.integrity._gf2 import CrcCombiner
from objget.integrity.s3crc import (
    ALGORITHMS,
    CrcChecksummer,
    crc_function,
    decode_checksum,
    encode_checksum,
)

NAMES = sorted(ALGORITHMS)


def _bitwise(name: str, data: bytes) -> int:
    """A slow reference CRC straight from the definition (reflected, init = xorout = ~0)."""
    poly, width = ALGORITHMS[name]
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ mask


@pytest.mark.parametrize(
    ("name", "check"),
    [("crc32", 0xCBF43926), ("crc32c", 0xE3069283), ("crc64nvme", 0xAE8B14860A799888)],
)
def test_check_values(name: str, check: int) -> None:
    fn = crc_function(name)
    assert fn is not None, f"no {name} implementation installed"
    assert fn(0, memoryview(b"123456789")) == check
    assert _bitwise(name, b"123456789") == check


@pytest.mark.parametrize("name", NAMES)
@given(data=st.binary(max_size=300))
@settings(max_examples=60)
def test_fast_update_matches_definition(name: str, data: bytes) -> None:
    fn = crc_function(name)
    assert fn is not None
    assert fn(0, memoryview(data)) == _bitwise(name, data)


@pytest.mark.parametrize("name", NAMES)
@given(a=st.binary(max_size=2000), b=st.binary(max_size=2000))
@settings(max_examples=80)
def test_chaining_and_combine(name: str, a: bytes, b: bytes) -> None:
    fn = crc_function(name)
    assert fn is not None
    whole = fn(0, memoryview(a + b))
    assert fn(fn(0, memoryview(a)), memoryview(b)) == whole
    ck = CrcChecksummer(name, whole, fn)
    assert ck.combine(fn(0, memoryview(a)), fn(0, memoryview(b)), len(b)) == whole


@pytest.mark.parametrize("name", NAMES)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=255),
)
@settings(max_examples=40)
def test_combine_is_associative_over_many_ranges(name: str, sizes: list[int], seed: int) -> None:
    fn = crc_function(name)
    assert fn is not None
    ck = CrcChecksummer(name, 0, fn)
    chunks = [bytes((seed + i + j) % 256 for j in range(n)) for i, n in enumerate(sizes)]
    left = 0
    for c in chunks:  # left fold
        left = ck.combine(left, fn(0, memoryview(c)), len(c))
    right_crc, right_len = 0, 0
    for c in reversed(chunks):  # right fold
        right_crc = ck.combine(fn(0, memoryview(c)), right_crc, right_len)
        right_len += len(c)
    assert left == right_crc == fn(0, memoryview(b"".join(chunks)))


def test_combine_huge_lengths_against_awscrt() -> None:
    """Lengths far beyond what a test can hash: cross-checked with awscrt's own combine."""
    import awscrt.checksums as checksums  # part of the s3 extra: fail loudly when missing

    combiners = {
        "crc32": checksums.combine_crc32,
        "crc32c": checksums.combine_crc32c,
        "crc64nvme": checksums.combine_crc64nvme,
    }
    for name, theirs in combiners.items():
        ours = CrcCombiner(*ALGORITHMS[name])
        for n in (1, 255, 1 << 20, 5 * (1 << 30) + 7, (1 << 40) - 1):
            mask = (1 << ours.width) - 1
            a, b = (0x1234567 + n) & mask, (0x89ABCDE ^ n) & mask
            assert ours.combine(a, b, n) == theirs(a, b, n), (name, n)


def test_zlib_example_and_bounds() -> None:
    c = CrcCombiner(0xEDB88320, 32)
    assert c.combine(zlib.crc32(b"ab"), zlib.crc32(b""), 0) == zlib.crc32(b"ab")
    with pytest.raises(ValueError, match="length"):
        c.x8n(-1)
    with pytest.raises(ValueError, match="reflected"):
        CrcCombiner(1 << 40, 32)


@pytest.mark.parametrize("name", NAMES)
def test_wire_format_roundtrip(name: str) -> None:
    width = ALGORITHMS[name][1]
    for value in (0, 1, (1 << width) - 1, 0x0102030405060708 & ((1 << width) - 1)):
        assert decode_checksum(name, encode_checksum(name, value)) == value


def test_wire_format_known_values() -> None:
    # values SeaweedFS/S3 sent for b"hello world" * 1000
    data = memoryview(b"hello world" * 1000)
    fn = crc_function("crc64nvme")
    assert fn is not None
    assert encode_checksum("crc64nvme", fn(0, data)) == "Fg5AiE8Eaws="
    fn32c = crc_function("crc32c")
    assert fn32c is not None
    assert encode_checksum("crc32c", fn32c(0, data)) == "ROPt5Q=="
    assert encode_checksum("crc32", zlib.crc32(data)) == "iH6F8A=="


@pytest.mark.parametrize("bad", ["", "not base64!", "AAAA", "AAAAAAAAAAAA"])
def test_decode_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ValueError, match="crc32c"):
        decode_checksum("crc32c", bad)


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown"):
        crc_function("md4")


def test_repr_shows_wire_value() -> None:
    fn = crc_function("crc32c")
    assert fn is not None
    assert "ROPt5Q==" in repr(CrcChecksummer("crc32c", decode_checksum("crc32c", "ROPt5Q=="), fn))
