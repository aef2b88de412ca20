"""Keys with `.`, `..` and empty segments go to the store exactly as written (issue 14, item 6).

urllib3's `PoolManager` resolves dot segments: `/test/a/../obj` went out as `/test/obj` — a
different object, even one in another bucket (`/other/../test/obj`), and, when signed, a
signature over a path the store never saw (SignatureDoesNotMatch). S3 and OSS take keys as
names: botocore and every AWS SDK send such segments literally, and S3 signs the path as sent.

- `LiteralS3` below is such a store: objects keyed by the literal key, SigV4 checked the way
  S3 checks it (botocore's S3 canonical request over the request target as received). Every
  key must come back with its own bytes; the store logs each request target.
- SeaweedFS refuses keys with dot segments (400 InvalidRequest, literal or `%2E`-encoded):
  through it the answer must be that clear error, never the object the normalised path names.
- The OSS-protocol server verifies the OSS V1/V4 signature over the key it received: a key
  that is all dots (the one dot segment an OSS URL can have: `/` in keys is `%2F`) must reach
  it as that key, signed, and fail there (SeaweedFS behind it refuses it) with a clear error.
"""

from __future__ import annotations

import _socket
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

import objget
from objget.backends import BackendOptions

from .._servers.oss_fixture import AK as OSS_AK
from .._servers.oss_fixture import REGION as OSS_REGION
from .._servers.oss_fixture import SK as OSS_SK
from .._servers.oss_server import OssServer
from .._servers.seaweed import SeaweedFS

AK, SK = "objgetAK", "objgetSecret0123456789"  # the seaweed_auth identity
DOT_KEYS = ["a/../obj", "../obj", "./x", "a/./b", "..", ".", "a//b", "a/.", "a/..", "/x"]
# What urllib3 made of them, stored too with other bytes: a normalised request finds these.
DECOYS = ["obj", "x", "a/b", "a/", "a", ""]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "OSS_", "ALIBABA_CLOUD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SK)
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", OSS_AK)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", OSS_SK)
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def fetch(source: str, dest: Path, **options: Any) -> objget.DownloadResult:
    config = objget.DownloadConfig(
        retry=objget.RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.05),
        timeouts=objget.Timeouts(connect=5, read=30),
    )
    with objget.Downloader(config=config, options=BackendOptions(**options)) as dl:
        return dl.download(source, str(dest))


def content(key: str) -> bytes:
    return f"object {key!r} ".encode() * 50


# -- a store that takes keys literally, as S3 does ------------------------------------------------


def expected_signature(method: str, target: str, headers: dict[str, str]) -> str | None:
    """The SigV4 signature S3 computes for this request as received; None if unsigned."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    auth = headers.get("authorization")
    if auth is None:
        return None
    fields = dict(
        part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key, date, region, _, _ = fields["Credential"].split("/")
    names = fields["SignedHeaders"].split(";")
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{target}",
        headers={name: headers[name] for name in names},
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = S3SigV4Auth(ReadOnlyCredentials(access_key, SK, None), "s3", region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


class _LiteralHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _LiteralServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        # the target exactly as received (`self.path` has a leading `//` folded into `/`)
        target = self.requestline.split(" ")[1]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.targets.append((self.command, target))
        signature = expected_signature(self.command, target, headers)
        if signature is not None and f"Signature={signature}" not in headers["authorization"]:
            return self._error(403, "SignatureDoesNotMatch")
        path = target.partition("?")[0]
        if headers["host"].startswith("bkt."):  # virtual-hosted: the whole path is the key
            path = "/bkt" + path
        if not path.startswith("/bkt/"):
            return self._error(404, "NoSuchBucket")
        data = self.server.objects.get(unquote(path[len("/bkt/") :]))
        if data is None:
            return self._error(404, "NoSuchKey")
        etag = '"' + hashlib.md5(data).hexdigest() + '"'  # noqa: S324 - an S3 ETag
        if headers.get("if-match", etag) != etag:
            return self._error(412, "PreconditionFailed")
        start, stop, status = 0, len(data), 200
        rng = headers.get("range")
        if rng and body:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start, stop, status = int(first), min(int(last) + 1, len(data)), 206
        self.send_response(status)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start:stop])

    def _error(self, status: int, code: str) -> None:
        xml = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(xml)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(xml)


class _LiteralServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _LiteralHandler)
        self.objects = objects
        self.targets: list[tuple[str, str]] = []


@pytest.fixture
def literal_s3() -> Iterator[_LiteralServer]:
    objects = {key: content(key) for key in DOT_KEYS + DECOYS}
    server = _LiteralServer(objects)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def bkt_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bkt.localhost` resolves to 127.0.0.1 in this process (virtual-hosted requests; objget
    passes the host as bytes, botocore as str)."""
    resolve = _socket.getaddrinfo  # objget's (`_conn`); socket.py's wrapper calls it too

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        local = host in ("bkt.localhost", b"bkt.localhost")
        return resolve("127.0.0.1" if local else host, *args, **kw)

    monkeypatch.setattr(_socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("key", DOT_KEYS)
@pytest.mark.parametrize("signed", [True, False], ids=["sigv4", "anonymous"])
@pytest.mark.parametrize("style", ["path", "virtual"])
def test_a_literal_store_serves_each_key_its_own_bytes(
    literal_s3: _LiteralServer,
    bkt_localhost: None,
    tmp_path: Path,
    key: str,
    signed: bool,
    style: str,
) -> None:
    port = literal_s3.server_address[1]
    dest = tmp_path / "out.bin"
    result = fetch(
        f"s3://bkt/{key}",
        dest,
        endpoint=f"http://localhost:{port}",
        region="us-east-1",
        anonymous=not signed,
        addressing_style=style,
    )
    assert dest.read_bytes() == content(key)
    assert result.size == len(content(key))
    sent = {target.partition("?")[0] for _, target in literal_s3.targets}
    assert sent == {("/bkt/" if style == "path" else "/") + quote(key, safe="/~")}


# -- SeaweedFS: refuses such keys, and objget must not end up at another object -----------------


def raw_status(port: int, target: str) -> tuple[int, bytes]:
    """Status and body of `GET target` sent byte for byte over a plain socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_seaweedfs_refuses_dot_segment_keys_literal_or_encoded(seaweed: SeaweedFS) -> None:
    """Why the literal store above exists: SeaweedFS cannot hold `a/../obj`, and answers
    400 InvalidRequest whether the segment is sent as `..` or as `%2E%2E`."""
    seaweed.put("test", "dots/obj", b"plain")
    assert raw_status(seaweed.port, "/test/dots/obj") == (200, b"plain")
    for target in ("/test/dots/x/../obj", "/test/dots/x/%2E%2E/obj", "/test/dots/./obj"):
        status, body = raw_status(seaweed.port, target)
        assert status == 400 and b"InvalidRequest" in body, target


def ensure_bucket(server: SeaweedFS, name: str) -> None:
    from botocore.exceptions import ClientError

    try:
        server.create_bucket(name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


@pytest.mark.parametrize("signed", [True, False], ids=["sigv4", "anonymous"])
@pytest.mark.parametrize("source", ["s3://test/dots/x/../obj", "s3://dots-other/../test/dots/obj"])
def test_seaweedfs_answers_a_clear_error_never_another_object(
    seaweed: SeaweedFS, seaweed_auth: SeaweedFS, tmp_path: Path, source: str, signed: bool
) -> None:
    server = seaweed_auth if signed else seaweed
    server.put("test", "dots/obj", b"the object the normalised path names")
    ensure_bucket(server, "dots-other")
    dest = tmp_path / "out.bin"
    with pytest.raises(objget.RemoteError) as caught:
        fetch(source, dest, endpoint=server.s3_url, region="us-east-1", anonymous=not signed)
    assert (caught.value.status, caught.value.code) == (400, "InvalidRequest")
    assert not dest.exists()


# -- OSS: a key that is all dots is a dot segment in the URL ------------------------------------


@pytest.fixture(scope="module")
def oss_dots(oss: OssServer) -> OssServer:
    oss.create_bucket("dots")
    return oss


@pytest.mark.parametrize("key", ["..", ".", "a/../obj"])
@pytest.mark.parametrize("version", ["4", "1"])
def test_oss_all_dots_key_reaches_the_store_as_that_key(
    oss_dots: OssServer, tmp_path: Path, key: str, version: str
) -> None:
    oss = oss_dots
    since = len(oss.log)
    dest = tmp_path / "out.bin"
    with pytest.raises(objget.DownloadError, match=f"oss://dots/{key}") as caught:
        fetch(
            f"oss://dots/{key}",
            dest,
            endpoint=oss.endpoint,
            region=OSS_REGION,
            signature_version=version,
        )
    seen = [(e.request.bucket, e.request.key) for e in oss.log[since:] if e.request]
    assert seen and set(seen) == {("dots", key)}  # signature verified over the literal key
    # SeaweedFS behind it refuses the key; the test server says so as a 500 InternalError
    assert "S3 HEAD answered 400" in str(caught.value)
    assert not dest.exists()
