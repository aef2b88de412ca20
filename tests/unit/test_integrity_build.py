"""Integrity builds the checkers from a backend's description (`ObjectChecks`); backends only
describe, and the capabilities only some stores have are Protocols checked with isinstance."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest

from objget import ByteRange, ObjectMeta
from objget.backends import (
    Abortable,
    AnswerChecksums,
    Backend,
    Lister,
    ObjectChecks,
    PartLayout,
)
from objget.backends._base import answer_checksums_of
from objget.backends._transport import ResponseBody
from objget.backends.http import HttpBackend
from objget.backends.oss import OssBackend, RenewingSigner
from objget.backends.s3 import S3Backend
from objget.integrity import (
    CompositeCheck,
    Crc64,
    DigestCheck,
    checksummer_for,
    file_checks_for,
)
from objget.integrity.crc64 import CRC64_CHECK
from objget.integrity.s3crc import CrcChecksummer, crc_function, encode_checksum
from objget.testing import MemoryBackend


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


def test_oss_crc64_description_gives_the_crc64_checksummer():
    summer = checksummer_for(ObjectChecks(values={"crc64ecma": str(CRC64_CHECK)}))
    assert isinstance(summer, Crc64) and summer.expected == CRC64_CHECK


def test_s3_full_object_crc_is_chosen_strongest_first_and_composite_skipped(caplog):
    fn = crc_function("crc32")
    assert fn is not None
    crc = fn(0, memoryview(b"abc"))
    values = {"crc32c": "AAAAAA==-3", "crc32": encode_checksum("crc32", crc)}
    with caplog.at_level(logging.INFO, logger="objget"):
        summer = checksummer_for(ObjectChecks(values=values, source="bucket"))
    assert isinstance(summer, CrcChecksummer)
    assert (summer.name, summer.expected) == ("crc32", crc)
    assert any("composite crc32c" in r.getMessage() for r in caplog.records)
    assert checksummer_for(ObjectChecks()) is None
    assert checksummer_for(ObjectChecks(values={"sha256": b64("sha256", b"x")})) is None


def test_a_ready_checksummer_wins():
    ready = Crc64(expected=1)
    assert checksummer_for(ObjectChecks(values={"crc32": "AAAAAA=="}, checksummer=ready)) is ready


def test_file_checks_digest_md5_and_composite_with_its_layout():
    sha = b64("sha256", b"x")
    values = {"sha256": sha, "md5": "A" * 32, "crc32": "AAAAAA==-2"}
    asked = []

    def sizes():
        asked.append(1)
        return (3, 4)

    checks = file_checks_for(ObjectChecks(values=values), size=7, part_sizes=sizes)
    assert [c.name for c in checks] == ["sha256", "md5", "crc32-composite"]
    assert isinstance(checks[0], DigestCheck) and checks[0].expected == sha
    assert checks[1].expected == "a" * 32
    assert isinstance(checks[2], CompositeCheck) and asked == [1]
    # no layout, or one that does not add up: the COMPOSITE value is not checked
    assert [c.name for c in file_checks_for(ObjectChecks(values=values), size=7)] == [
        "sha256",
        "md5",
    ]
    wrong = file_checks_for(ObjectChecks(values=values), size=8, part_sizes=sizes)
    assert [c.name for c in wrong] == ["sha256", "md5"]
    # no composite value: the layout is never asked for
    asked.clear()
    assert file_checks_for(ObjectChecks(values={"sha1": b64("sha1", b"x")}), size=1,
                           part_sizes=sizes)[0].name == "sha1"  # fmt: skip
    assert asked == []


def test_backends_describe_and_never_build():
    meta = ObjectMeta(size=3, etag='"e"', checksums={"crc64ecma": "12"})
    mem = MemoryBackend({"k": b"abc"})
    assert mem.object_checks(meta) == ObjectChecks()
    summer = Crc64(expected=5)
    assert MemoryBackend({"k": b"abc"}, checksummer=summer).object_checks(meta).checksummer is (
        summer
    )
    for cls in (S3Backend, OssBackend, HttpBackend, MemoryBackend):
        assert callable(cls.object_checks)
        assert not hasattr(cls, "checksummer") and not hasattr(cls, "file_checks")


@pytest.mark.parametrize(
    ("cls", "caps"),
    [
        (S3Backend, {Lister, PartLayout, AnswerChecksums}),
        (OssBackend, {Lister}),
        (HttpBackend, set()),
        (MemoryBackend, set()),
    ],
)
def test_backend_capabilities_are_protocols(cls, caps):
    for proto in (Lister, PartLayout, AnswerChecksums):
        assert issubclass(cls, proto) == (proto in caps), (cls, proto)
    backend: type[Backend] = cls  # every one is a Backend for mypy too
    assert backend is cls


def test_body_capabilities_are_protocols():
    assert issubclass(ResponseBody, Abortable)

    class Plain:
        status = 206
        content_range = None
        content_length = None
        headers: dict[str, str] = {}

    assert not isinstance(Plain(), Abortable)
    body = MemoryBackend({"k": b"abc"}).get_range("k", ByteRange(1, 3), meta=ObjectMeta(size=3))
    assert body.headers == {"Content-Length": "2", "Content-Range": "bytes 1-2/3"}


def test_answer_checksums_of_is_kept_per_class():
    s3 = object.__new__(S3Backend)
    oss = object.__new__(OssBackend)
    assert answer_checksums_of(s3) is s3 and answer_checksums_of(oss) is None
    assert answer_checksums_of(s3) is s3 and answer_checksums_of(oss) is None


def test_renewing_signer_is_a_protocol():
    from objget.backends._oss_setup import NativeSigner

    assert issubclass(NativeSigner, RenewingSigner)
