"""The real-server fixtures do what the other integration tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from .._servers.seaweed import own_seaweed
from .._servers.util import sha256_file, write_random

MiB = 1024 * 1024


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
    yield pool
    pool.clear()


def test_seaweed_put_and_ranged_get(seaweed, http):
    data = bytes(range(256)) * 1000
    etag = seaweed.put("test", "smoke/range.bin", data)
    url = f"{seaweed.s3_url}/test/smoke/range.bin"

    whole = http.request("GET", url)
    assert whole.status == 200
    assert whole.data == data
    assert whole.headers["ETag"] == etag

    part = http.request("GET", url, headers={"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert part.data == data[1000:2000]

    beyond = http.request("GET", url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416


def test_seaweed_multipart_etag_and_if_match(seaweed, http, tmp_path):
    src = write_random(tmp_path / "mp.bin", 12 * MiB, seed=3)
    etag = seaweed.put_multipart("test", "smoke/mp.bin", src, 5 * MiB)
    assert etag.strip('"').endswith("-3")
    url = f"{seaweed.s3_url}/test/smoke/mp.bin"
    got = http.request("GET", url, preload_content=False)
    out = tmp_path / "got.bin"
    with open(out, "wb") as f:
        for chunk in got.stream(MiB):
            f.write(chunk)
    got.release_conn()
    assert got.status == 200
    assert sha256_file(out) == sha256_file(src)

    seaweed.put("test", "smoke/mp.bin", b"replaced")
    stale = http.request("GET", url, headers={"Range": "bytes=0-3", "If-Match": etag})
    assert stale.status == 412

    seaweed.delete("test", "smoke/mp.bin")
    assert http.request("GET", url).status == 404


def test_seaweed_versioning(seaweed, http):
    seaweed.create_bucket("versioned")
    seaweed.enable_versioning("versioned")
    first = seaweed.client.put_object(Bucket="versioned", Key="v.bin", Body=b"one")
    second = seaweed.client.put_object(Bucket="versioned", Key="v.bin", Body=b"two")
    assert first["VersionId"] and first["VersionId"] != second["VersionId"]
    url = f"{seaweed.s3_url}/versioned/v.bin"
    assert http.request("GET", url).data == b"two"
    old = http.request("GET", url, fields={"versionId": first["VersionId"]})
    assert old.status == 200 and old.data == b"one"


def _client(server, access_key: str, secret: str):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.s3_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_seaweed_auth_checks_signatures(seaweed_auth, http):
    seaweed_auth.put("test", "secret.bin", b"for identity 0 only")
    (ak, sk), (other_ak, other_sk) = seaweed_auth.identities

    good = _client(seaweed_auth, ak, sk)
    bad = _client(seaweed_auth, ak, sk + "x")
    other = _client(seaweed_auth, other_ak, other_sk)
    try:
        body = good.get_object(Bucket="test", Key="secret.bin")["Body"]
        assert body.read() == b"for identity 0 only"
        body.close()

        with pytest.raises(ClientError) as wrong_secret:
            bad.get_object(Bucket="test", Key="secret.bin")
        err = wrong_secret.value.response
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert err["Error"]["Code"] == "SignatureDoesNotMatch"

        with pytest.raises(ClientError) as no_rights:
            other.get_object(Bucket="test", Key="secret.bin")
        assert no_rights.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert no_rights.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        for client in (good, bad, other):
            client.close()

    anonymous = http.request("GET", f"{seaweed_auth.s3_url}/test/secret.bin")
    assert anonymous.status == 403


def test_nginx_ranges_etag_and_reload(nginx_factory, http, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = bytes(range(256)) * 4096
    (root / "f.bin").write_bytes(data)
    server = nginx_factory(root)
    url = f"{server.url}/f.bin"

    part = http.request("GET", url, headers={"Range": "bytes=10-4105"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 10-4105/{len(data)}"
    assert part.data == data[10:4106]
    etag = part.headers["ETag"]
    matched = http.request("GET", url, headers={"Range": "bytes=0-0", "If-Match": etag})
    assert matched.status == 206
    assert http.request("GET", url, headers={"If-Match": '"other"'}).status == 412

    server.reload(extra="max_ranges 0;")
    ignored = http.request("GET", url, headers={"Range": "bytes=10-19"})
    assert ignored.status == 200 and ignored.data == data
    server.reload(extra="return 403;")
    assert http.request("GET", url).status == 403
    assert server.access_log.exists()


def test_nginx_tls_verified_against_its_ca(nginx_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello over TLS\n")
    server = nginx_factory(root, tls=True)
    assert server.url.startswith("https://127.0.0.1:")

    trusting = urllib3.PoolManager(ca_certs=str(server.ca_path), retries=False, timeout=10)
    try:
        resp = trusting.request("GET", f"{server.url}/hello.txt", headers={"Range": "bytes=6-9"})
        assert resp.status == 206 and resp.data == b"over"
        localhost = server.url.replace("127.0.0.1", "localhost")
        assert trusting.request("GET", f"{localhost}/hello.txt").data == b"hello over TLS\n"
    finally:
        trusting.clear()

    default_trust = urllib3.PoolManager(retries=False, timeout=10)
    try:
        with pytest.raises(urllib3.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            default_trust.request("GET", f"{server.url}/hello.txt")
    finally:
        default_trust.clear()


# A SeaweedFS of this module's own (see `own_seaweed`), in place of the session one.
seaweed = pytest.fixture(scope="module", name="seaweed")(own_seaweed)
