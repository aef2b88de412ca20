"""Checksum values: S3's `x-amz-checksum-*` headers read as full-object or COMPOSITE, the
SHA-256/SHA-1 file checks, the values `check_all` reports, and the `SHA256SUMS` reader."""

from __future__ import annotations

import base64
import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget import DownloadResult, IntegrityError
from objget._sumsfile import entry_for, parse_sums
from objget.backends._s3_checks import checksums_from_headers
from objget.integrity import CompositeCheck, DigestCheck, check_all, full_object_digest
from objget.integrity.s3crc import CrcChecksummer, crc_function, encode_checksum


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


def test_headers_full_object_and_composite():
    sha = b64("sha256", b"x")
    got = checksums_from_headers(
        {"x-amz-checksum-sha256": f" {sha} ", "x-amz-checksum-sha1": "", "other": "1"}
    )
    assert got == {"sha256": sha}
    assert full_object_digest(got).name == "sha256"
    composite = {"x-amz-checksum-sha256": f"{sha}-3", "x-amz-checksum-type": "COMPOSITE"}
    assert checksums_from_headers(composite) == {"sha256": f"{sha}-3"}
    assert full_object_digest(checksums_from_headers(composite)) is None
    # a COMPOSITE type without the -N suffix is a value objget cannot place: dropped
    lying = {"x-amz-checksum-sha1": b64("sha1", b"x"), "x-amz-checksum-type": "composite"}
    assert checksums_from_headers(lying) == {}
    both = {"sha1": b64("sha1", b"x"), "sha256": sha}
    assert full_object_digest(both).name == "sha256"  # the strongest one


@pytest.fixture
def fd_of(tmp_path):
    opened = []

    def make(data: bytes) -> int:
        path = tmp_path / f"f{len(opened)}"
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        opened.append(fd)
        return fd

    yield make
    for fd in opened:
        os.close(fd)


@pytest.mark.parametrize("name", ["sha256", "sha1"])
def test_base64_digest_check_and_its_value(fd_of, name):
    data = random.Random(1).randbytes(5 * 1024 * 1024 + 3)
    check = full_object_digest({name: b64(name, data)})
    fd = fd_of(data)
    assert check.compute(fd, len(data)) == b64(name, data)
    done = check_all(
        fd, size=len(data), checksummer=None, crc=None, checks=[check], display="d",
        discard=lambda: None,
    )  # fmt: skip
    assert done.names == ("size", name)
    assert dict(done.values) == {name: b64(name, data)}
    discarded = []
    bad = fd_of(data[:-1] + b"\x00")
    with pytest.raises(IntegrityError) as info:
        check_all(
            bad, size=len(data), checksummer=None, crc=None, checks=[check], display="d",
            discard=lambda: discarded.append(1),
        )  # fmt: skip
    assert info.value.algorithm == name and info.value.expected == b64(name, data)
    assert discarded == [1]


def test_crc_value_is_reported_as_s3_writes_it(fd_of):
    data = b"hello crc"
    fn = crc_function("crc32")
    crc = fn(0, memoryview(data))
    summer = CrcChecksummer("crc32", crc, fn)
    user = DigestCheck("sha256", hashlib.sha256(data).hexdigest().upper())
    done = check_all(
        fd_of(data), size=len(data), checksummer=summer, crc=crc, checks=[user], display="d",
        discard=lambda: None,
    )  # fmt: skip
    assert done.names == ("size", "crc32", "sha256")
    assert dict(done.values) == {
        "crc32": encode_checksum("crc32", crc),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=5),
    name=st.sampled_from(["sha256", "sha1"]),
)
def test_composite_digest_is_the_digest_of_part_digests(tmp_path_factory, sizes, name):
    rnd = random.Random(sum(sizes))
    parts = [rnd.randbytes(n) for n in sizes]
    joined = b"".join(hashlib.new(name, p).digest() for p in parts)
    expected = f"{b64(name, joined)}-{len(parts)}"
    check = CompositeCheck(name, expected, tuple(sizes))
    assert check.name == f"{name}-composite"
    path = tmp_path_factory.mktemp("c") / "f"
    path.write_bytes(b"".join(parts))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert check.compute(fd, sum(sizes)) == expected
        if sum(sizes) > 1:
            assert check.compute(fd, sum(sizes) - 1).startswith("<part sizes")
    finally:
        os.close(fd)


def test_result_to_dict_carries_the_values():
    res = DownloadResult(
        path="p", source="s", size=1, etag=None, version_id=None, verified=("size", "sha1"),
        bytes_fetched=1, bytes_resumed=0, elapsed=0.1, retries=0, checksums={"sha1": "abc="},
    )  # fmt: skip
    assert res.to_dict()["checksums"] == {"sha1": "abc="}
    plain = DownloadResult(
        path="p", source="s", size=1, etag=None, version_id=None, verified=("size",),
        bytes_fetched=1, bytes_resumed=0, elapsed=0.1, retries=0,
    )  # fmt: skip
    assert plain.checksums == {} and plain.to_dict()["checksums"] == {}


A = "a" * 64
B = "B" * 64


def test_sums_file_gnu_bsd_and_escapes():
    text = "\n".join([
        "# a comment",
        f"{A}  data/one.bin",
        f"{B} *./two.bin",
        f"SHA256 (three (final).bin) = {A}",
        f"\\{A}  back\\\\slash\\nnewline",
        f"{A}  name with  spaces ",
        "",
    ])  # fmt: skip
    assert parse_sums(text) == {
        "data/one.bin": A,
        "two.bin": B.lower(),
        "three (final).bin": A,
        "back\\slash\nnewline": A,
        "name with  spaces ": A,
    }
    sums = parse_sums(text)
    assert entry_for(sums, ["out.bin", "./two.bin"]) == ("two.bin", B.lower())
    assert entry_for(sums, ["nope"]) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("d41d8cd98f00b204e9800998ecf8427e  f", "128-bit digest"),
        (f"SHA1 (f) = {'a' * 40}", "SHA1 sums are not supported"),
        (f"{A} f", "not a `HEX  NAME`"),
        (f"{A}  f\n{B}  ./f", "listed twice"),
        (f"\\{A}  bad\\qescape", "bad escape"),
    ],
)
def test_sums_file_errors_name_the_line(line, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_sums(line, where="SUMS")
    assert "SUMS:" in str(info.value)


def test_the_users_and_the_stores_sha256_cost_one_read(fd_of, monkeypatch):
    import objget.integrity.digests as verify_mod

    data = b"one read" * 1000
    reads = []
    real = verify_mod.hash_fd
    monkeypatch.setattr(verify_mod, "hash_fd", lambda *a: (reads.append(1), real(*a))[1])
    user = DigestCheck("sha256", hashlib.sha256(data).hexdigest())
    store = full_object_digest({"sha256": b64("sha256", data)})
    done = check_all(
        fd_of(data), size=len(data), checksummer=None, crc=None, checks=[user, store],
        display="d", discard=lambda: None,
    )  # fmt: skip
    assert done.names == ("size", "sha256") and len(reads) == 1
    assert dict(done.values) == {"sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (f"{A}  f.bin\n", ["--checksum", f"sha256:{A}"], "not both"),
        ("not a sums line\n", [], "SUMS:1: not a `HEX  NAME`"),
        (f"{A}  other.bin\n", [], "lists no entry named 'f.bin'"),
        (f"{A}  f.bin\n", ["--ray"], "not supported with --ray"),
    ],
)
def test_checksum_file_usage_errors_exit_2_before_any_request(
    tmp_path, capsys, text, extra, message
):
    from objget.cli import run

    sums = tmp_path / "SUMS"
    sums.write_text(text)
    if "--ray" in extra:
        extra = [*extra, "--recursive"]
    # port 9 (discard) on loopback: nothing must be asked of it
    args = ["http://127.0.0.1:9/f.bin", str(tmp_path / "f.bin"), "--checksum-file", str(sums)]
    code = run([*args, *extra])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert message in err and out == ""
    assert not (tmp_path / "f.bin").exists()


def test_oss_crc64_value_is_reported_in_decimal_as_oss_sends_it(fd_of):
    from objget.integrity import Crc64

    data = b"123456789"
    summer = Crc64(expected=0x995DC9BBDF1939FA)  # CRC-64/XZ check value
    crc = summer.update(0, memoryview(data))
    done = check_all(
        fd_of(data), size=len(data), checksummer=summer, crc=crc, checks=[], display="d",
        discard=lambda: None,
    )  # fmt: skip
    assert dict(done.values) == {"crc64ecma": str(0x995DC9BBDF1939FA)}
