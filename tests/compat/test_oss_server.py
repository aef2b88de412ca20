"""The OSS-protocol test server is faithful enough for oss2 itself, over real TCP.

oss2 is the client here: its signers (V1, V4 with a region, STS), its CRC-64 checks (on by
default: PUT, full GET, multipart complete, resumable download) and its error parsing
(`x-oss-err` on HEAD) all run against `tests/_servers/oss_server.py` in front of SeaweedFS.
The endpoint is `http://127.0.0.1:PORT`: oss2 uses path style for IP endpoints.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import oss2.exceptions as oe
import oss2.http
import oss2.utils
import pytest
import requests

from .._servers.oss_server import Fault, OssServer
from .._servers.seaweed import SeaweedFS

AK, SK = "LTAI5tOssTestKey", "ossTestSecret0123456789"
STS_AK, STS_SK, TOKEN = "STS.NUtestKey", "stsSecret987", "CAIS-token/with+odd=chars"
REGION = "cn-hangzhou"
BUCKET = "oss-compat"
ODD_KEYS = [
    "plain.bin",
    "dir/sub dir/a+b%20c.txt",
    "中文/文件 名.dat",
    "q?x=1&y=2",
    "a//b",
    "~tilde",
]

AUTHS = {
    "v1": lambda: oss2.Auth(AK, SK),
    "v4": lambda: oss2.AuthV4(AK, SK),
    "sts-v1": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN),
    "sts-v4": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN, auth_version=oss2.AUTH_VERSION_4),
}


@pytest.fixture(scope="module")
def oss(seaweed: SeaweedFS) -> Iterator[OssServer]:
    with OssServer(
        seaweed.s3_url, keys={AK: SK}, sts={STS_AK: (STS_SK, TOKEN)}, region=REGION
    ) as server:
        yield server


@pytest.fixture(scope="module")
def bucket_created(oss: OssServer) -> str:
    oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, BUCKET).create_bucket()
    return BUCKET


def make_bucket(oss: OssServer, auth: Any, name: str = BUCKET, **kw: Any) -> oss2.Bucket:
    return oss2.Bucket(auth, oss.endpoint, name, region=REGION, connect_timeout=30, **kw)


def crc_of(data: bytes) -> int:
    c = oss2.utils.Crc64()
    c.update(data)
    return int(c.crc)


@pytest.fixture(params=sorted(AUTHS))
def bucket(request: pytest.FixtureRequest, oss: OssServer, bucket_created: str) -> oss2.Bucket:
    return make_bucket(oss, AUTHS[request.param]())


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
def test_put_get_round_trip(bucket: oss2.Bucket, key: str) -> None:
    data = random.Random(key).randbytes(100_000)
    put = bucket.put_object(key, data)  # oss2 checks the returned CRC-64
    assert put.crc == crc_of(data)
    assert put.etag == hashlib.md5(data).hexdigest().upper()  # noqa: S324
    got = bucket.get_object(key)
    assert got.read() == data
    assert got.client_crc == got.server_crc == crc_of(data)
    assert got.headers["x-oss-object-type"] == "Normal"
    assert got.headers["Accept-Ranges"] == "bytes"


def test_byte_range_and_head(bucket: oss2.Bucket) -> None:
    data = random.Random(1).randbytes(1 << 20)
    bucket.put_object("ranged.bin", data)
    part = bucket.get_object("ranged.bin", byte_range=(1000, 4999))
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-4999/{len(data)}"
    assert part.read() == data[1000:5000]
    head = bucket.head_object("ranged.bin")
    assert head.content_length == len(data)
    assert int(head.headers["x-oss-hash-crc64ecma"]) == crc_of(data)
    assert head.server_crc == crc_of(data)
    assert head.etag == hashlib.md5(data).hexdigest().upper()  # noqa: S324
    assert len(head.request_id) == 24
    meta = bucket.get_object_meta("ranged.bin")
    assert meta.content_length == len(data) and meta.etag == head.etag


def test_range_behaviours(oss: OssServer, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.Auth(AK, SK))
    b.put_object("ten.bin", b"0123456789")
    # legacy: a range past the end is ignored -> 200 with everything
    legacy = b.get_object("ten.bin", byte_range=(5, 20))
    assert legacy.status == 200 and legacy.read() == b"0123456789"
    std = {"x-oss-range-behavior": "standard"}
    clipped = b.get_object("ten.bin", byte_range=(5, 20), headers=std)
    assert clipped.status == 206 and clipped.read() == b"56789"
    with pytest.raises(oe.ServerError) as info:
        b.get_object("ten.bin", byte_range=(10, 20), headers=std)
    assert (info.value.status, info.value.code) == (416, "InvalidRange")
    assert b.get_object("ten.bin", byte_range=(None, 3)).read() == b"789"


def test_if_match_and_versions(oss: OssServer, seaweed: SeaweedFS, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.AuthV4(AK, SK))
    etag = b.put_object("cond.bin", b"v1").etag
    assert b.get_object("cond.bin", headers={"If-Match": f'"{etag}"'}).read() == b"v1"
    with pytest.raises(oe.PreconditionFailed):
        b.get_object("cond.bin", headers={"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    with pytest.raises(oe.NotModified):
        b.get_object("cond.bin", headers={"If-None-Match": f'"{etag}"'})
    seaweed.create_bucket("oss-versioned")
    seaweed.enable_versioning("oss-versioned")
    vb = make_bucket(oss, oss2.AuthV4(AK, SK), "oss-versioned")
    first = vb.put_object("v.bin", b"first").versionid
    second = vb.put_object("v.bin", b"second!").versionid
    assert first and second and first != second
    old = vb.get_object("v.bin", params={"versionId": first})
    assert old.read() == b"first" and old.versionid == first
    assert vb.head_object("v.bin").versionid == second
    assert vb.head_object("v.bin", params={"versionId": first}).server_crc == crc_of(b"first")
    with pytest.raises(oe.ServerError) as info:
        vb.get_object("v.bin", params={"versionId": "no-such-version"})
    assert (info.value.status, info.value.code) == (404, "NoSuchVersion")


def test_multipart_upload_has_combined_crc(
    oss: OssServer, bucket_created: str, tmp_path: Path
) -> None:
    b = make_bucket(oss, oss2.AuthV4(AK, SK))
    src = tmp_path / "up.bin"
    data = random.Random(5).randbytes(12 * 1024 * 1024 + 7)
    src.write_bytes(data)
    oss2.resumable_upload(  # oss2 checks each part's and the combined CRC-64
        b,
        "multi.bin",
        str(src),
        multipart_threshold=1 << 20,
        part_size=5 << 20,
        store=oss2.ResumableStore(root=str(tmp_path / "store")),
    )
    head = b.head_object("multi.bin")
    assert head.object_type == "Multipart" and head.etag.endswith("-3")
    assert head.server_crc == crc_of(data)
    assert b.get_object("multi.bin").read() == data


def test_resumable_download_30mib(oss: OssServer, bucket_created: str, tmp_path: Path) -> None:
    data = random.Random(30).randbytes(30 * 1024 * 1024)
    oss.put(BUCKET, "big/30m.bin", data)
    for name in ("v1", "sts-v4"):
        dest = tmp_path / f"{name}.bin"
        oss2.resumable_download(  # the parallel path: threshold below the size
            make_bucket(oss, AUTHS[name]()),
            "big/30m.bin",
            str(dest),
            multiget_threshold=8 << 20,
            part_size=4 << 20,
            num_threads=4,
            store=oss2.ResumableDownloadStore(root=str(tmp_path / "store")),
        )
        assert dest.read_bytes() == data
    assert oss.bytes_served(BUCKET, "big/30m.bin") >= 2 * len(data)


def test_corrupt_byte_fails_oss2_crc_check(
    oss: OssServer, bucket_created: str, tmp_path: Path
) -> None:
    data = random.Random(9).randbytes(10 * 1024 * 1024)
    oss.put(BUCKET, "corrupt.bin", data)
    oss.corrupt(BUCKET, "corrupt.bin", 7_000_000)
    try:
        b = make_bucket(oss, oss2.Auth(AK, SK))
        body = b.get_object("corrupt.bin", byte_range=(6_999_999, 7_000_000)).read()
        assert body == bytes([data[6_999_999], data[7_000_000] ^ 0xFF])
        whole = b.get_object("corrupt.bin")
        assert whole.read() != data and whole.client_crc != whole.server_crc == crc_of(data)
        with pytest.raises(oe.InconsistentError):  # get_object_to_file checks the CRC
            b.get_object_to_file("corrupt.bin", str(tmp_path / "whole.bin"))
        with pytest.raises(oe.InconsistentError):
            oss2.resumable_download(
                b,
                "corrupt.bin",
                str(tmp_path / "c.bin"),
                multiget_threshold=1 << 20,
                part_size=1 << 20,
                store=oss2.ResumableDownloadStore(root=str(tmp_path / "s")),
            )
    finally:
        oss.clear_faults()
    assert b.get_object("corrupt.bin").read() == data


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_wrong_secret_is_signature_mismatch(
    oss: OssServer, bucket_created: str, version: str
) -> None:
    auth = oss2.Auth(AK, "wrong") if version == "v1" else oss2.AuthV4(AK, "wrong")
    b = make_bucket(oss, auth)
    with pytest.raises(oe.SignatureDoesNotMatch) as info:
        b.get_object("plain.bin")
    assert info.value.status == 403 and len(info.value.request_id) == 24
    assert info.value.details["EC"] and info.value.details["HostId"]
    with pytest.raises(oe.SignatureDoesNotMatch):  # HEAD: the code comes from x-oss-err
        b.head_object("plain.bin")


def test_unknown_key_wrong_token_and_anonymous(oss: OssServer, bucket_created: str) -> None:
    with pytest.raises(oe.ServerError) as info:
        make_bucket(oss, oss2.Auth("nobody", SK)).get_object("plain.bin")
    assert (info.value.status, info.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oe.ServerError) as info:
        make_bucket(oss, oss2.StsAuth(STS_AK, STS_SK, "bad-token")).get_object("plain.bin")
    assert (info.value.status, info.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oe.AccessDenied):
        make_bucket(oss, oss2.AnonymousAuth()).get_object("plain.bin")


def test_v4_wrong_region_is_refused(oss: OssServer, bucket_created: str) -> None:
    b = oss2.Bucket(oss2.AuthV4(AK, SK), oss.endpoint, BUCKET, region="cn-beijing")
    with pytest.raises(oe.SignatureDoesNotMatch):
        b.get_object("plain.bin")


def test_missing_key_and_bucket(oss: OssServer, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.AuthV4(AK, SK))
    with pytest.raises(oe.NoSuchKey) as info:
        b.get_object("no/such/key")
    assert info.value.details["Key"] == "no/such/key"
    with pytest.raises(oe.NoSuchKey):  # oss2 reads the code from HEAD's x-oss-err
        b.head_object("no/such/key")
    assert not b.object_exists("no/such/key")
    with pytest.raises(oe.NoSuchBucket):
        make_bucket(oss, oss2.AuthV4(AK, SK), "no-such-bucket-here").get_object("k")


def test_head_error_carries_x_oss_err(oss: OssServer, bucket_created: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", oss.port, timeout=30)
    try:
        conn.request("HEAD", f"/{BUCKET}/plain.bin")  # unsigned
        resp = conn.getresponse()
        assert resp.status == 403 and resp.read() == b""
        xml = ET.fromstring(base64.b64decode(resp.getheader("x-oss-err", "")))
        assert xml.findtext("Code") == "AccessDenied"
        assert xml.findtext("RequestId") == resp.getheader("x-oss-request-id")
        assert xml.findtext("EC") == resp.getheader("x-oss-ec")
    finally:
        conn.close()


def test_virtual_hosted_request(oss: OssServer, bucket_created: str) -> None:
    """`Host: <bucket>.<endpoint host>` with the path holding only the key, signed by oss2."""
    b = make_bucket(oss, oss2.Auth(AK, SK))
    b.put_object("vh/key 1.txt", b"virtual")
    for auth in (oss2.Auth(AK, SK), oss2.AuthV4(AK, SK)):
        req = oss2.http.Request("GET", "http://x/", region=REGION, product="oss")
        auth._sign_request(req, BUCKET, "vh/key 1.txt")
        headers = {k: v for k, v in req.headers.items() if v is not None}
        headers["Host"] = f"{BUCKET}.oss-{REGION}.aliyuncs.com"
        conn = http.client.HTTPConnection("127.0.0.1", oss.port, timeout=30)
        try:
            conn.request("GET", "/vh/key%201.txt", headers=headers)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"virtual")
        finally:
            conn.close()


def test_presigned_v1_url(oss: OssServer, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.Auth(AK, SK))
    b.put_object("signed.txt", b"by url")
    url = b.sign_url("GET", "signed.txt", 60)
    with requests.get(url, timeout=30) as resp:
        assert (resp.status_code, resp.content) == (200, b"by url")
    with requests.get(url.replace("Signature=", "Signature=x"), timeout=30) as resp:
        assert resp.status_code == 403 and b"SignatureDoesNotMatch" in resp.content


def test_fault_hook(oss: OssServer, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.Auth(AK, SK))
    b.put_object("faulty.bin", b"x" * 100_000)
    oss.on_request = lambda r: (
        Fault(code="ServiceUnavailable", retry_after=2) if r.key == "faulty.bin" else None
    )
    try:
        with pytest.raises(oe.ServerError) as info:
            b.get_object("faulty.bin")
        assert info.value.status == 503 and info.value.headers["Retry-After"] == "2"
        oss.on_request = lambda r: Fault(reset_after=1000) if r.key == "faulty.bin" else None
        conn = http.client.HTTPConnection("127.0.0.1", oss.port, timeout=30)
        req = oss2.http.Request("GET", "http://x/")
        oss2.Auth(AK, SK)._sign_request(req, BUCKET, "faulty.bin")
        try:
            conn.request(
                "GET", f"/{BUCKET}/faulty.bin", headers={k: v for k, v in req.headers.items() if v}
            )
            resp = conn.getresponse()
            assert resp.status == 200
            with pytest.raises((http.client.IncompleteRead, ConnectionError)):
                resp.read()
        finally:
            conn.close()
    finally:
        oss.clear_faults()


def test_empty_chunked_and_gzip_objects(oss: OssServer, bucket_created: str) -> None:
    b = make_bucket(oss, oss2.AuthV4(AK, SK))
    b.put_object("empty.bin", b"")
    assert b.get_object("empty.bin").read() == b""
    head = b.head_object("empty.bin")
    assert head.content_length == 0 and head.server_crc == 0
    with pytest.raises(oe.ServerError) as info:
        b.get_object("empty.bin", byte_range=(0, 0), headers={"x-oss-range-behavior": "standard"})
    assert info.value.status == 416
    chunks = [b"chunked ", b"transfer ", b"coding" * 100_000]
    put = b.put_object("chunked.bin", iter(chunks))  # no length: requests sends it chunked
    assert put.crc == crc_of(b"".join(chunks))
    # the server logs a request after its answer is sent: give a loaded machine a moment
    for _ in range(100):
        sent = [e.request for e in oss.log if e.method == "PUT" and e.request]
        if any(r.key == "chunked.bin" for r in sent):
            break
        time.sleep(0.05)
    assert [r.headers.get("transfer-encoding") for r in sent if r.key == "chunked.bin"] == [
        "chunked"
    ]
    assert b.get_object("chunked.bin").read() == b"".join(chunks)
    stored = gzip.compress(b"text " * 1000)
    b.put_object("page.html.gz", stored, headers={"Content-Encoding": "gzip"})
    req = oss2.http.Request("GET", "http://x/", region=REGION, product="oss")
    oss2.AuthV4(AK, SK)._sign_request(req, BUCKET, "page.html.gz")
    conn = http.client.HTTPConnection("127.0.0.1", oss.port, timeout=30)
    try:  # served as stored, never decoded
        conn.request(
            "GET", f"/{BUCKET}/page.html.gz", headers={k: v for k, v in req.headers.items() if v}
        )
        resp = conn.getresponse()
        assert resp.getheader("Content-Encoding") == "gzip"
        assert int(resp.getheader("x-oss-hash-crc64ecma", "")) == crc_of(stored)
        assert resp.read() == stored
    finally:
        conn.close()
