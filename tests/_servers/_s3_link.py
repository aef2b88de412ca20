"""A small streaming S3 client for the OSS test server: anonymous, path-style, http.client.

SeaweedFS without `-s3.config` allows anonymous requests, so the OSS layer in front of it does
all the authentication. One connection per request keeps it simple and thread-safe.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

__all__ = ["S3Link", "S3Meta", "S3Reply"]

CHUNK = 1 << 20


class S3Reply:
    """An open S3 response; close it (or use `with`) to release the connection."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    def read(self) -> bytes:
        return self._resp.read()

    def readinto(self, buf: memoryview) -> int:
        return self._resp.readinto(buf)

    def error_code(self) -> str:
        """The S3 `<Code>` of an error answer ("" when there is none)."""
        m = re.search(rb"<Code>([^<]*)</Code>", self.read()[:65536])
        return m.group(1).decode("ascii", "replace") if m else ""

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> S3Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class S3Meta:
    """What HEAD said about an object. `etag` is S3's own (quoted, lower-case hex)."""

    size: int
    etag: str
    last_modified: str
    version_id: str | None
    headers: dict[str, str]

    @property
    def etag_hex(self) -> str:
        return self.etag.strip('"').lower()


class S3Link:
    """Requests to one S3 endpoint (`http://host:port`)."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port, got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout

    def send(
        self,
        method: str,
        bucket: str,
        key: str = "",
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        length: int | None = None,
    ) -> S3Reply:
        """Send one request; an iterable body is streamed and must add up to `length` bytes."""
        path = "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/") if key else "")
        if params:
            path += "?" + urlencode(sorted(params.items())).replace("=&", "&").removesuffix("=")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if isinstance(body, bytes):
                length = len(body)
            if body is not None or method in ("PUT", "POST"):
                conn.putheader("Content-Length", str(length or 0))
            conn.endheaders()
            if isinstance(body, bytes):
                conn.send(body)
            elif body is not None:
                for chunk in body:
                    conn.send(chunk)
            return S3Reply(conn, conn.getresponse())
        except BaseException:
            conn.close()
            raise

    def head(self, bucket: str, key: str, version_id: str | None = None) -> S3Meta | S3Reply:
        """The object's metadata, or the (closed) error reply."""
        params = {"versionId": version_id} if version_id else None
        with self.send("HEAD", bucket, key, params=params) as r:
            if r.status != 200:
                return r
            h = r.headers
            return S3Meta(
                size=int(h["content-length"]),
                etag=h.get("etag", '""'),
                last_modified=h.get("last-modified", ""),
                version_id=h.get("x-amz-version-id"),
                headers=h,
            )
