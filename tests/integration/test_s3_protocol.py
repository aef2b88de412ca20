"""The S3 backend's requests and answers, against a scripted fake S3 over real TCP
(pytest-httpserver): headers, signing region, region redirects, error mapping, checksums."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import threading
import zlib

import pytest
from werkzeug.wrappers import Request, Response

import objget
from objget.backends import BackendOptions
from objget.integrity.s3crc import crc_function, encode_checksum

MiB = 1024 * 1024
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ACCESS = "AKIDEXAMPLE0000TEST"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Only fake credentials; no config file, no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


class FakeS3:
    """Path-style `/bucket/key` with real Range semantics and a script of answers."""

    def __init__(self, data: bytes, *, headers=None, etag='"0123456789abcdef0123456789abcdef"'):
        self.data = data
        self.etag = etag
        self.extra = dict(headers or {})
        self.script: list = []  # callables (request) -> Response | None, consumed in order
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            action = self.script.pop(0) if self.script else None
        if action is not None:
            resp = action(request)
            if resp is not None:
                return resp
        base = {"ETag": self.etag, "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
        base.update(self.extra)
        if request.method == "HEAD":
            resp = Response(b"", headers=base)
            resp.headers["Content-Length"] = str(len(self.data))
            resp.automatically_set_content_length = False
            return resp
        m = re.match(r"bytes=(\d+)-(\d+)$", request.headers.get("Range", ""))
        if m is None:
            return Response(self.data, headers=base)
        start, last = int(m.group(1)), int(m.group(2))
        if request.headers.get("If-Match", self.etag) != self.etag:
            return Response(b"", status=412)
        body = self.data[start : last + 1]
        base["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(self.data)}"
        return Response(body, status=206, headers=base)


def error(status, code, message="", region=None, headers=None):
    region_xml = f"<Region>{region}</Region>" if region else ""
    body = (
        f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message>"
        f"{region_xml}<RequestId>REQ123</RequestId></Error>"
    )

    def answer(request):
        b = b"" if request.method == "HEAD" else body.encode()
        return Response(b, status=status, headers=headers or {}, content_type="application/xml")

    return answer


@pytest.fixture
def fake(httpserver):
    def make(data: bytes, **kw) -> tuple[FakeS3, str]:
        app = FakeS3(data, **kw)
        httpserver.expect_request(re.compile("^/bucket/.*")).respond_with_handler(app)
        return app, httpserver.url_for("/").rstrip("/")

    return make


def fetch(endpoint, dest, source="s3://bucket/dir/obj.bin", **opts):
    cfg = objget.DownloadConfig(
        part_size=MiB,
        max_workers=2,
        retry=objget.RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05),
        timeouts=objget.Timeouts(connect=5, read=10),
    )
    with objget.Downloader(config=cfg, options=BackendOptions(endpoint=endpoint, **opts)) as dl:
        return dl.download(source, dest)


def scope(request) -> str:
    m = re.search(
        r"Credential=([^/]+)/\d{8}/([^/]+)/s3/aws4_request", request.headers["Authorization"]
    )
    assert m is not None, request.headers["Authorization"]
    assert m.group(1) == ACCESS
    return m.group(2)


def signed_headers(request) -> set[str]:
    m = re.search(r"SignedHeaders=([^,]+)", request.headers["Authorization"])
    assert m is not None
    return set(m.group(1).split(";"))


def test_requests_are_signed_pinned_and_carry_the_options(fake, tmp_path):
    data = random.Random(1).randbytes(3 * MiB + 5)
    key = b"\x01" * 32
    app, endpoint = fake(data, headers={"x-amz-version-id": "v42"})
    res = fetch(
        endpoint, tmp_path / "out", request_payer=True, sse_c_key=key, region="eu-central-1"
    )
    assert (tmp_path / "out").read_bytes() == data
    assert res.version_id == "v42"
    head, *gets = app.requests
    assert head.method == "HEAD" and head.path == "/bucket/dir/obj.bin"
    assert head.headers["x-amz-checksum-mode"] == "ENABLED"
    assert "x-amz-checksum-mode" in signed_headers(head)
    for r in app.requests:
        assert scope(r) == "eu-central-1"
        assert r.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert r.headers["x-amz-request-payer"] == "requester"
        assert r.headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
        assert base64.b64decode(r.headers["x-amz-server-side-encryption-customer-key"]) == key
        assert r.headers["x-amz-server-side-encryption-customer-key-MD5"] == (
            base64.b64encode(hashlib.md5(key).digest()).decode()
        )
    assert len(gets) >= 4
    for g in gets:
        assert g.args.get("versionId") == "v42"
        assert g.headers["If-Match"] == app.etag
        assert g.headers["Range"].startswith("bytes=")
    text = repr(res) + repr(BackendOptions(sse_c_key=key))
    assert base64.b64encode(key).decode() not in text and "\\x01" not in text


def test_anonymous_requests_are_unsigned(fake, tmp_path):
    data = b"public bytes"
    app, endpoint = fake(data)
    fetch(endpoint, tmp_path / "out", anonymous=True)
    assert (tmp_path / "out").read_bytes() == data
    assert all("Authorization" not in r.headers for r in app.requests)


def test_region_redirect_is_followed_once_with_the_new_region(fake, tmp_path):
    data = random.Random(2).randbytes(MiB + 1)
    app, endpoint = fake(data)
    app.script = [error(301, "PermanentRedirect", headers={"x-amz-bucket-region": "eu-west-1"})]
    fetch(endpoint, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert scope(app.requests[0]) == "us-east-1"
    assert [scope(r) for r in app.requests[1:]] == ["eu-west-1"] * (len(app.requests) - 1)


def test_authorization_header_malformed_names_the_region_in_xml(fake, tmp_path):
    data = b"x" * 100
    app, endpoint = fake(data)
    app.script = [
        None,  # HEAD ok
        error(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong", "ap-east-1"),
    ]
    fetch(endpoint, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert [scope(r) for r in app.requests] == ["us-east-1", "us-east-1", "ap-east-1"]


def test_region_redirect_is_not_followed_twice(fake, tmp_path):
    app, endpoint = fake(b"abc")
    app.script = [
        error(301, "PermanentRedirect", headers={"x-amz-bucket-region": "eu-west-1"}),
        error(301, "PermanentRedirect", headers={"x-amz-bucket-region": "eu-north-1"}),
    ]
    with pytest.raises(objget.RemoteError, match="--region eu-north-1") as info:
        fetch(endpoint, tmp_path / "out")
    assert info.value.status == 301
    assert len(app.requests) == 2
    assert not (tmp_path / "out").exists()


def test_head_403_reads_the_code_from_a_probe_and_names_the_credentials(fake, tmp_path):
    app, endpoint = fake(b"abc")
    app.script = [
        error(403, "SignatureDoesNotMatch"),
        error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match"),
    ]
    with pytest.raises(objget.AccessDenied) as info:
        fetch(endpoint, tmp_path / "out")
    text = str(info.value)
    assert "SignatureDoesNotMatch" in text and "does not match" in text
    assert "credentials from env" in text and "****TEST" in text
    assert SECRET not in text and ACCESS not in text
    assert info.value.code == "SignatureDoesNotMatch" and info.value.request_id == "REQ123"
    assert app.requests[1].method == "GET" and app.requests[1].headers["Range"] == "bytes=0-0"


def test_expired_token_is_access_denied(fake, tmp_path):
    app, endpoint = fake(b"abc")
    app.script = [None, error(400, "ExpiredToken", "The provided token has expired.")]
    with pytest.raises(objget.AccessDenied, match="ExpiredToken"):
        fetch(endpoint, tmp_path / "out")


def test_missing_key_and_slowdown(fake, tmp_path):
    app, endpoint = fake(b"abc")
    app.script = [error(404, "NoSuchKey")]
    with pytest.raises(objget.ObjectNotFound, match="NoSuchKey"):
        fetch(endpoint, tmp_path / "out")
    data = random.Random(3).randbytes(2 * MiB)
    app.data = data
    app.script = [None, error(503, "SlowDown", "Please reduce your request rate.")]
    res = fetch(endpoint, tmp_path / "out2")
    assert (tmp_path / "out2").read_bytes() == data
    assert res.retries >= 1


@pytest.mark.parametrize("name", ["crc64nvme", "crc32c", "crc32"])
def test_full_object_checksum_is_verified(fake, tmp_path, name):
    data = random.Random(4).randbytes(3 * MiB + 17)
    fn = crc_function(name)
    assert fn is not None
    value = encode_checksum(name, fn(0, memoryview(data)))
    app, endpoint = fake(
        data, headers={f"x-amz-checksum-{name}": value, "x-amz-checksum-type": "FULL_OBJECT"}
    )
    res = fetch(endpoint, tmp_path / "out")
    assert res.verified == ("size", name)

    def flip(request):
        m = re.match(r"bytes=(\d+)-(\d+)$", request.headers.get("Range", ""))
        if request.method != "GET" or m is None or int(m.group(1)) != 0:
            return None
        body = bytearray(data[: int(m.group(2)) + 1])
        body[1000] ^= 0x01
        headers = {"ETag": app.etag, "Content-Range": f"bytes 0-{len(body) - 1}/{len(data)}"}
        return Response(bytes(body), status=206, headers=headers)

    app.script = [None] + [flip] * 4
    with pytest.raises(objget.IntegrityError) as info:
        fetch(endpoint, tmp_path / "bad")
    assert info.value.algorithm == name
    assert not (tmp_path / "bad").exists()


def test_composite_checksum_is_not_claimed(fake, tmp_path):
    data = b"z" * 5000
    part = zlib.crc32(data).to_bytes(4, "big")
    composite = base64.b64encode(zlib.crc32(part).to_bytes(4, "big")).decode() + "-1"
    app, endpoint = fake(
        data, headers={"x-amz-checksum-crc32": composite, "x-amz-checksum-type": "COMPOSITE"}
    )
    res = fetch(endpoint, tmp_path / "out")
    assert res.verified == ("size",)


def test_verify_md5_meta(fake, tmp_path):
    data = b"hello md5"
    md5 = hashlib.md5(data).hexdigest()
    app, endpoint = fake(data, etag=f'"{md5}"')
    with objget.Downloader(options=BackendOptions(endpoint=endpoint, verify_md5=True)) as dl:
        from objget.backends import resolve

        found = resolve("s3://bucket/k", dl.transport, dl.options, {})
        assert found.backend.head(found.key).checksums["md5"] == md5
    app.etag = '"0123456789abcdef0123456789abcdef-3"'
    with objget.Downloader(options=BackendOptions(endpoint=endpoint, verify_md5=True)) as dl:
        found = resolve("s3://bucket/k", dl.transport, dl.options, {})
        assert "md5" not in found.backend.head(found.key).checksums
