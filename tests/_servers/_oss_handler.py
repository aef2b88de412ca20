"""The request handler of the OSS test server: one OSS request → S3 requests → OSS answer."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from ._oss_wire import (
    OssFault,
    Target,
    error_xml,
    new_request_id,
    parse_target,
    plan_range,
    verify_request,
    x_oss_err,
)
from ._oss_writes import PASS_HEADERS, WriteOps, etag_out
from ._s3_link import CHUNK, S3Meta, S3Reply

if TYPE_CHECKING:
    from .oss_server import OssServer

_S3_CODES = {"BadDigest": "InvalidDigest", "BucketAlreadyOwnedByYou": "BucketAlreadyExists"}


@dataclass(frozen=True)
class RequestInfo:
    """One authenticated request, as the fault hook and the log see it (headers lower-case)."""

    method: str
    bucket: str
    key: str
    params: dict[str, str]
    headers: dict[str, str]
    access_key_id: str | None


@dataclass(frozen=True)
class Fault:
    """What the `on_request` hook may ask for instead of a normal answer.

    `code`: answer with this OSS error (e.g. "ServiceUnavailable", "InternalError"), with
    `Retry-After` when `retry_after` is set. `delay`: wait before answering. `reset_after`:
    send the headers and this many body bytes, then reset the connection (TCP RST).
    `pause_after` / `pause`: stall that long after that many body bytes, then go on.
    """

    code: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    reset_after: int | None = None
    pause_after: int | None = None
    pause: float = 0.0


@dataclass(frozen=True)
class LogEntry:
    """A finished request: what was asked, the status answered and the body bytes sent."""

    request: RequestInfo | None
    method: str
    path: str
    status: int
    body_bytes: int
    range: str | None = None
    security_token: str | None = None  # the STS token the request carried, accepted or not


class _Reset(Exception):
    """The fault hook asked for a connection reset mid-body."""


def _http_time(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


class OssHandler(WriteOps, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    timeout = 60.0  # an idle keep-alive connection is closed after this long
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        self.oss.track(self.connection, active=True)

    def finish(self) -> None:
        self.oss.track(self.connection, active=False)
        super().finish()

    @property
    def oss(self) -> OssServer:
        return self.server.oss  # type: ignore[no-any-return]

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = lambda self: self._dispatch()  # noqa: E731

    # -- framing -----------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.rid = new_request_id()
        self.sent = 0
        self.status = 0
        self.body_read = False
        self.fault: Fault | None = None
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            low = name.lower()
            headers[low] = f"{headers[low]},{value}" if low in headers else value
        info: RequestInfo | None = None
        try:
            t = parse_target(self.path, headers)
            self.target = t
            ak = verify_request(
                self.command,
                t,
                keys=self.oss.keys,
                sts=self.oss.sts,
                region=self.oss.region,
                anonymous=self.oss.anonymous,
                now=datetime.now(timezone.utc),
                expiry=self.oss.sts_expiry,
            )
            info = RequestInfo(self.command, t.bucket, t.key, t.params, headers, ak)
            hook = self.oss.on_request
            self.fault = hook(info) if hook else None
            if self.fault and self.fault.delay:
                time.sleep(self.fault.delay)
            if self.fault and self.fault.code:
                extra = (
                    {"Retry-After": str(self.fault.retry_after)} if self.fault.retry_after else {}
                )
                raise OssFault(self.fault.code, headers=extra)
            self._route(t)
        except OssFault as fault:
            self._send_error(fault)
        except _Reset:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if self.command in ("PUT", "POST") and not self.body_read:
                self.close_connection = True  # the body was not read: the connection is unusable
            entry = LogEntry(
                info,
                self.command,
                self.path,
                self.status,
                self.sent,
                headers.get("range"),
                headers.get("x-oss-security-token"),
            )
            self.oss.add_log(entry)

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-oss-request-id", self.rid)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection or (self.command in ("PUT", "POST") and not self.body_read):
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, fault: OssFault) -> None:
        if fault.status == 304:
            self.status = 304
            self.send_response(304)
            self.send_header("x-oss-request-id", self.rid)
            self.end_headers()
            return
        host = self.headers.get("Host", "")
        body = error_xml(fault, self.rid, host)
        headers = {"Content-Type": "application/xml", "x-oss-ec": fault.ec, **fault.headers}
        if self.command == "HEAD":
            headers["x-oss-err"] = x_oss_err(body)
            headers["Content-Length"] = "0"
        self._send(fault.status, headers, body)

    # -- routing -----------------------------------------------------------------------------------

    def _route(self, t: Target) -> None:
        m, p = self.command, t.params
        if not t.bucket:
            raise OssFault("NotImplemented", "ListBuckets is not implemented by this test server.")
        if not t.key:
            if m == "PUT" and not p:
                return self._create_bucket(t)
            raise OssFault(
                "NotImplemented", f"bucket operation {m} {sorted(p)} is not implemented."
            )
        if m == "GET" and "uploadId" in p:
            return self._list_parts(t)
        if m in ("GET", "HEAD"):
            return self._get_or_head(t)
        if m == "PUT" and "uploadId" in p and "partNumber" in p:
            return self._put(t, part=(p["uploadId"], int(p["partNumber"])))
        if m == "PUT" and not ({"x-oss-copy-source"} & set(t.headers)) and not p:
            return self._put(t, part=None)
        if m == "POST" and "uploads" in p:
            return self._initiate(t)
        if m == "POST" and "uploadId" in p:
            return self._complete(t)
        if m == "DELETE":
            return self._delete(t)
        raise OssFault("NotImplemented", f"{m} with {sorted(p)} is not implemented.")

    def _s3_fault(self, r: S3Reply, t: Target) -> OssFault:
        code = r.error_code() or {404: "NoSuchKey", 412: "PreconditionFailed"}.get(r.status, "")
        code = _S3_CODES.get(code, code)
        fields = {"BucketName": t.bucket, "Key": t.key} if t.key else {"BucketName": t.bucket}
        return OssFault(code or "InternalError", fields=fields)

    # -- objects -----------------------------------------------------------------------------------

    def _meta(self, t: Target) -> S3Meta:
        version = t.params.get("versionId") or None
        meta = self.oss.link.head(t.bucket, t.key, version)
        if isinstance(meta, S3Meta):
            return meta
        if meta.status == 404:
            with self.oss.link.send("HEAD", t.bucket) as b:
                bucket_ok = b.status == 200
            code = (
                "NoSuchVersion"
                if version and bucket_ok
                else "NoSuchKey"
                if bucket_ok
                else "NoSuchBucket"
            )
            raise OssFault(code, fields={"BucketName": t.bucket, "Key": t.key})
        raise OssFault("InternalError", f"S3 HEAD answered {meta.status}")

    def _check_conditions(self, meta: S3Meta, h: dict[str, str]) -> None:
        mine = meta.etag_hex
        tags = lambda v: {x.strip().removeprefix("W/").strip('"').lower() for x in v.split(",")}  # noqa: E731
        modified = _http_time(meta.last_modified)
        if "if-match" in h and not ({"*", mine} & tags(h["if-match"])):
            raise OssFault("PreconditionFailed", fields={"Condition": "If-Match"})
        since = _http_time(h.get("if-unmodified-since", ""))
        if since and modified and modified > since:
            raise OssFault("PreconditionFailed", fields={"Condition": "If-Unmodified-Since"})
        if "if-none-match" in h and ({"*", mine} & tags(h["if-none-match"])):
            raise OssFault("NotModified", status=304)
        since = _http_time(h.get("if-modified-since", ""))
        if "if-none-match" not in h and since and modified and modified <= since:
            raise OssFault("NotModified", status=304)

    def _object_headers(self, t: Target, meta: S3Meta) -> dict[str, str]:
        out = {"Content-Type": meta.headers.get("content-type", "application/octet-stream")}
        out.update({k.title(): v for k in PASS_HEADERS[1:] if (v := meta.headers.get(k))})
        out.update(
            {
                "x-oss-meta-" + k[11:]: v
                for k, v in meta.headers.items()
                if k.startswith("x-amz-meta-")
            }
        )
        out["ETag"] = etag_out(meta.etag)
        out["Last-Modified"] = meta.last_modified
        out["Accept-Ranges"] = "bytes"
        out["x-oss-object-type"] = "Multipart" if "-" in meta.etag_hex else "Normal"
        out["x-oss-storage-class"] = "Standard"
        out["x-oss-hash-crc64ecma"] = str(self.oss.crc_for(t.bucket, t.key, meta))
        if meta.version_id and meta.version_id != "null":
            out["x-oss-version-id"] = meta.version_id
        return out

    def _get_or_head(self, t: Target) -> None:
        meta = self._meta(t)
        self._check_conditions(meta, t.headers)
        out = self._object_headers(t, meta)
        if self.command == "HEAD":
            out["Content-Length"] = str(meta.size)
            return self._send(200, out)
        standard = t.headers.get("x-oss-range-behavior", "").lower() == "standard"
        rng = plan_range(t.headers.get("range"), meta.size, standard=standard)
        start, stop = rng or (0, meta.size)
        s3_headers = {"If-Match": meta.etag}
        if rng:
            s3_headers["Range"] = f"bytes={start}-{stop - 1}"
        params = {"versionId": meta.version_id} if t.params.get("versionId") else None
        with self.oss.link.send("GET", t.bucket, t.key, params=params, headers=s3_headers) as r:
            if r.status not in (200, 206):
                raise self._s3_fault(r, t)
            out["Content-Length"] = str(stop - start)
            if rng:
                out["Content-Range"] = f"bytes {start}-{stop - 1}/{meta.size}"
            self._send(206 if rng else 200, out)
            self._stream(r, t, start, stop - start)

    def _stream(self, r: S3Reply, t: Target, start: int, length: int) -> None:
        fault = self.fault
        flips = self.oss.corruptions(t.bucket, t.key)
        buf = memoryview(bytearray(CHUNK))
        while self.sent < length:
            n = r.readinto(buf[: min(CHUNK, length - self.sent)])
            if n == 0:
                self.close_connection = True  # S3 sent less than it promised: truncate too
                return
            pos = start + self.sent
            for off in flips:
                if pos <= off < pos + n:
                    buf[off - pos] ^= 0xFF
            if fault and fault.reset_after is not None and self.sent + n > fault.reset_after:
                self.wfile.write(buf[: fault.reset_after - self.sent])
                self.sent = fault.reset_after
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                raise _Reset
            if (
                fault
                and fault.pause_after is not None
                and self.sent <= fault.pause_after < self.sent + n
            ):
                self.wfile.flush()
                time.sleep(fault.pause)
            self.wfile.write(buf[:n])
            self.sent += n
