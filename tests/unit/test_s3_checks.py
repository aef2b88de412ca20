"""Post-download S3 checks: MD5 ETag, COMPOSITE multipart CRCs, ObjectParts XML (pure + file)."""

from __future__ import annotations

import base64
import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends._s3_checks import parse_object_parts
from objget.integrity import CompositeCheck, Md5Check
from objget.integrity.s3crc import crc_function, encode_checksum

PARTS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<GetObjectAttributesResponse><ETag>abc-2</ETag><ObjectParts>
<TotalPartsCount>3</TotalPartsCount><PartNumberMarker>0</PartNumberMarker>
<NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts>
<IsTruncated>true</IsTruncated>
<Part><PartNumber>1</PartNumber><Size>5242880</Size><ChecksumCRC32C>g4N2Lg==</ChecksumCRC32C></Part>
<Part><PartNumber>2</PartNumber><Size>17</Size></Part>
</ObjectParts></GetObjectAttributesResponse>"""


def test_parse_object_parts():
    page = parse_object_parts(PARTS_XML)
    assert page.parts == ((1, 5242880), (2, 17))
    assert page.truncated and page.next_marker == 2
    last = parse_object_parts(b"<Part><PartNumber>3</PartNumber><Size>0</Size></Part>")
    assert last.parts == ((3, 0),) and not last.truncated and last.next_marker is None


@pytest.mark.parametrize(
    "body", [b"", b"<ObjectParts></ObjectParts>", b"<Part><PartNumber>1</PartNumber></Part>"]
)
def test_parse_object_parts_rejects(body):
    with pytest.raises(ValueError):
        parse_object_parts(body)


def composite(name: str, parts: list[bytes]) -> str:
    fn = crc_function(name)
    assert fn is not None
    width = 8 if name == "crc64nvme" else 4
    joined = b"".join(fn(0, memoryview(p)).to_bytes(width, "big") for p in parts)
    return f"{encode_checksum(name, fn(0, memoryview(joined)))}-{len(parts)}"


def file_with(tmp_path, data: bytes) -> int:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


@pytest.mark.parametrize("name", ["crc32c", "crc32", "crc64nvme"])
@given(sizes=st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=5))
@settings(max_examples=15, deadline=None)
def test_composite_check_matches_definition(tmp_path_factory, name, sizes):
    rnd = random.Random(sum(sizes))
    parts = [rnd.randbytes(n) for n in sizes]
    data = b"".join(parts)
    fd = file_with(tmp_path_factory.mktemp("c"), data)
    try:
        check = CompositeCheck(name, composite(name, parts), tuple(sizes))
        assert check.name == f"{name}-composite"
        assert check.compute(fd, len(data)) == check.expected
        if data:  # one flipped bit changes it
            os.close(fd)
            flipped = bytearray(data)
            flipped[len(data) // 2] ^= 1
            fd = file_with(tmp_path_factory.mktemp("c"), bytes(flipped))
            assert check.compute(fd, len(data)) != check.expected
    finally:
        os.close(fd)


def test_seaweedfs_composite_value(tmp_path):
    """The value SeaweedFS gave for two identical 5 MiB parts with CRC32C g4N2Lg==."""
    part_crc = base64.b64decode("g4N2Lg==")
    fn = crc_function("crc32c")
    assert fn is not None
    assert encode_checksum("crc32c", fn(0, memoryview(part_crc * 2))) == "SfOukw=="


def test_composite_with_wrong_sizes_never_matches(tmp_path):
    fd = file_with(tmp_path, b"abcdef")
    try:
        check = CompositeCheck("crc32", composite("crc32", [b"abc", b"def"]), (3, 4))
        assert check.compute(fd, 6) != check.expected
    finally:
        os.close(fd)


def test_md5_check(tmp_path):
    data = random.Random(1).randbytes(9 * 1024 * 1024 + 1)
    fd = file_with(tmp_path, data)
    try:
        check = Md5Check(hashlib.md5(data).hexdigest().upper())
        assert check.name == "md5"
        assert check.compute(fd, len(data)) == check.expected
    finally:
        os.close(fd)
