"""An OSS-protocol server for tests: OSS signatures, CRC-64 and error XML in front of SeaweedFS.

```python
with SeaweedFS(tmp / "weed") as s3, OssServer(s3.s3_url, keys={"AK": "SK"}) as oss:
    oss.create_bucket("demo")
    oss.put("demo", "big.bin", path)            # records the object's CRC-64
    bucket = oss2.Bucket(oss2.Auth("AK", "SK"), oss.endpoint, "demo")   # path style (IP)
    oss.corrupt("demo", "big.bin", 123)         # flip the byte at offset 123 in every GET
    oss.on_request = lambda req: Fault(code="ServiceUnavailable", retry_after=1) if ... else None
```

What it does, per request (stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive, one thread per
connection): find bucket and key (path style for IP/localhost hosts, else `bucket.<host>`),
verify the OSS V1 / V4 / STS signature (or a V1 presigned URL) against `keys` and `sts` (an
STS key past its `add_sts(..., expires=)` answers 403 `SecurityTokenExpired`), then
answer like OSS: `ETag` upper-case and quoted, `x-oss-hash-crc64ecma`, `x-oss-request-id`,
`x-oss-object-type`, `x-oss-version-id`, ranges with and without `x-oss-range-behavior:
standard`, `If-Match` / `If-None-Match` / `If-(Un)Modified-Since`, `versionId`, and OSS error
XML (on HEAD: empty body and base64 `x-oss-err`). Bodies stream through a 1 MiB buffer both
ways, so objects of any size pass without being held in memory.

Supported operations: PutObject, GetObject, HeadObject, GetObjectMeta (`?objectMeta`),
DeleteObject, InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload, PutBucket (create). Anything else answers 501 NotImplemented.

CRC-64: recorded when an object is written through this server (PUT, or multipart parts
combined); for objects written to SeaweedFS directly it is computed on first use by reading the
object once, and then kept, keyed by bucket, key, version and ETag.

Run as a module for a shell demo; it serves until interrupted:
`python -m tests._servers.oss_server WORKDIR --key AK:SK --bucket demo --put demo/big.bin=FILE`
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from objget.integrity.crc64 import crc64

from ._oss_handler import Fault, LogEntry, OssHandler, RequestInfo
from ._s3_link import CHUNK, S3Link, S3Meta

__all__ = ["Fault", "LogEntry", "OssServer", "RequestInfo"]


@dataclass
class _State:
    crcs: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    parts: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    corrupt: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up stop()
    allow_reuse_address = True
    oss: OssServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # the client went away or was reset on purpose
        super().handle_error(request, client_address)


class OssServer:
    """The OSS layer over one S3 endpoint (an anonymous SeaweedFS), on 127.0.0.1:<free port>.

    `keys` maps access key ids to secrets; `sts` maps temporary key ids to (secret, token);
    `anonymous` lets unsigned requests through; `region` is the one V4 must be signed for.
    """

    def __init__(
        self,
        s3_url: str,
        *,
        keys: Mapping[str, str] | None = None,
        sts: Mapping[str, tuple[str, str]] | None = None,
        region: str = "cn-hangzhou",
        anonymous: bool = False,
    ) -> None:
        self.link = S3Link(s3_url)
        self.keys = dict(keys or {})
        self.sts = dict(sts or {})
        self.sts_expiry: dict[str, datetime] = {}
        self.region = region
        self.anonymous = anonymous
        self.on_request: Callable[[RequestInfo], Fault | None] | None = None
        self.port = 0
        self.endpoint = ""
        self._lock = threading.Lock()
        self._state = _State()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> OssServer:
        if self._http is not None:
            raise RuntimeError("already started")
        self._http = _HTTPServer(("127.0.0.1", 0), OssHandler)
        self._http.oss = self
        self.port = int(self._http.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="oss-server"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        http, self._http = self._http, None
        if http is None:
            return
        http.shutdown()
        http.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OssServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test helpers ------------------------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        with self.link.send("PUT", name) as r:
            if r.status != 200:
                raise RuntimeError(f"create bucket {name}: {r.status} {r.error_code()}")

    def put(self, bucket: str, key: str, data: bytes | Path | str) -> S3Meta:
        """Store an object straight in S3 (not through the OSS layer) and record its CRC-64.
        SeaweedFS sometimes answers 500 under load: such a PUT is tried again (4 times)."""
        crc = 0
        for attempt in range(4):
            crc = 0
            if isinstance(data, bytes):
                crc, length = crc64(data), len(data)
                body: Any = data
            else:
                length = Path(data).stat().st_size

                def chunks() -> Any:
                    nonlocal crc
                    with open(data, "rb") as f:
                        while chunk := f.read(CHUNK):
                            crc = crc64(chunk, crc)
                            yield chunk

                body = chunks()
            with self.link.send("PUT", bucket, key, body=body, length=length) as r:
                if r.status == 200:
                    break
                if r.status < 500 or attempt == 3:
                    raise RuntimeError(f"put {bucket}/{key}: {r.status} {r.error_code()}")
            time.sleep(0.5 * (attempt + 1))
        meta = self.link.head(bucket, key)
        assert isinstance(meta, S3Meta)
        self.record_crc(bucket, key, meta, crc)
        return meta

    def crc(self, bucket: str, key: str, version_id: str | None = None) -> int:
        """The CRC-64 the server announces for the object (computing it if needed)."""
        meta = self.link.head(bucket, key, version_id)
        if not isinstance(meta, S3Meta):
            raise KeyError(f"{bucket}/{key}: {meta.status}")
        return self.crc_for(bucket, key, meta)

    def add_sts(self, ak: str, secret: str, token: str, *, expires: datetime | None = None) -> None:
        """Accept the temporary key `ak` with `token`; from `expires` on (aware datetime), its
        requests answer 403 SecurityTokenExpired, as OSS does."""
        self.sts[ak] = (secret, token)
        if expires is not None:
            self.sts_expiry[ak] = expires
        else:
            self.sts_expiry.pop(ak, None)

    def corrupt(self, bucket: str, key: str, offset: int) -> None:
        """From now on, every GET of the object flips the byte at `offset` (CRC unchanged)."""
        with self._lock:
            self._state.corrupt.setdefault((bucket, key), set()).add(offset)

    def clear_faults(self) -> None:
        """Undo `corrupt` and remove the `on_request` hook."""
        with self._lock:
            self._state.corrupt.clear()
        self.on_request = None

    @property
    def log(self) -> list[LogEntry]:
        """A copy of the finished requests so far, oldest first."""
        with self._lock:
            return list(self._state.log)

    def bytes_served(self, bucket: str, key: str) -> int:
        """Object body bytes sent by GETs of `bucket/key` so far."""
        return sum(
            e.body_bytes
            for e in self.log
            if e.method == "GET"
            and e.request
            and (e.request.bucket, e.request.key) == (bucket, key)
        )

    # -- used by the handler -----------------------------------------------------------------------

    def record_crc(self, bucket: str, key: str, meta: S3Meta, crc: int) -> None:
        with self._lock:
            self._state.crcs[(bucket, key, meta.version_id or "", meta.etag_hex)] = crc

    def crc_for(self, bucket: str, key: str, meta: S3Meta) -> int:
        ident = (bucket, key, meta.version_id or "", meta.etag_hex)
        with self._lock:
            known = self._state.crcs.get(ident)
        if known is not None:
            return known
        params = {"versionId": meta.version_id} if meta.version_id else None
        crc = 0
        buf = memoryview(bytearray(CHUNK))
        with self.link.send(
            "GET", bucket, key, params=params, headers={"If-Match": meta.etag}
        ) as r:
            if r.status != 200:
                raise RuntimeError(f"reading {bucket}/{key} for its CRC: {r.status}")
            while n := r.readinto(buf):
                crc = crc64(buf[:n], crc)
        with self._lock:
            self._state.crcs[ident] = crc
        return crc

    def corruptions(self, bucket: str, key: str) -> frozenset[int]:
        with self._lock:
            return frozenset(self._state.corrupt.get((bucket, key), ()))

    def record_part(self, upload_id: str, number: int, crc: int, size: int) -> None:
        with self._lock:
            self._state.parts.setdefault(upload_id, {})[number] = (crc, size)

    def parts_of(self, upload_id: str, *, forget: bool = False) -> dict[int, tuple[int, int]]:
        """(crc, size) of each part uploaded through this server, by part number."""
        with self._lock:
            if forget:
                return self._state.parts.pop(upload_id, {})
            return dict(self._state.parts.get(upload_id, {}))

    def add_log(self, entry: LogEntry) -> None:
        with self._lock:
            self._state.log.append(entry)

    def track(self, conn: socket.socket, *, active: bool) -> None:
        with self._lock:
            if active:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)


def _main(argv: list[str] | None = None) -> int:
    from .seaweed import SeaweedFS

    parser = argparse.ArgumentParser(prog="python -m tests._servers.oss_server")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--key", action="append", default=[], metavar="AK:SK")
    parser.add_argument("--sts", action="append", default=[], metavar="AK:SK:TOKEN")
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--anonymous", action="store_true")
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--put", action="append", default=[], metavar="BUCKET/KEY=FILE")
    args = parser.parse_args(argv)
    keys = dict(k.split(":", 1) for k in args.key)
    sts = {ak: (sk, tok) for ak, sk, tok in (s.split(":", 2) for s in args.sts)}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with (
        SeaweedFS(args.workdir) as s3,
        OssServer(
            s3.s3_url, keys=keys, sts=sts, region=args.region, anonymous=args.anonymous
        ) as oss,
    ):
        for name in args.bucket:
            oss.create_bucket(name)
        for spec in args.put:
            target, _, file = spec.partition("=")
            bucket, _, key = target.partition("/")
            oss.put(bucket, key, Path(file))
        print(f"OSS_ENDPOINT={oss.endpoint} OSS_REGION={args.region}", flush=True)
        while not stop.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main())
