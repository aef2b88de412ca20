"""A counting, rule-driven HTTP proxy in front of SeaweedFS for the batch tests.

It forwards every request to the upstream S3 endpoint (path style, anonymous) and records
`(method, key)` per request, so a test can tell exactly which objects were fetched. Rules:

- `deny`: keys answered with 403 AccessDenied (S3 error XML; empty body for HEAD).
- `change_on_get`: key -> new bytes; before the first GET of that key is forwarded, the object
  is overwritten upstream, so the GET's `If-Match` fails with 412 (changed mid-download).
- `inject`: extra keys added at the front of the first listing page (a key SeaweedFS itself
  refuses to store, such as one containing `../`, as a hostile store could list it).
- `throttle`: key -> bytes/s for GET bodies of that key.
- `max_keys`: listing requests are forwarded asking for pages of at most this many keys.
- `list_gate`: called (in the proxy's thread) before a listing request for a page after the
  first is forwarded; it may block to hold that page back.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote_plus, unquote, urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
_DENY_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>proxy</RequestId></Error>"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: BatchProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients killed mid-body are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._forward()

    def do_GET(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy = self.server.proxy
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        bucket, _, key = path.lstrip("/").partition("/")
        listing = not key and "list-type" in parts.query
        proxy.record(self.command, key if key else f"LIST {bucket}")
        target = self.path
        if listing and proxy.max_keys is not None:
            query = re.sub(r"(^|&)max-keys=\d+", rf"\1max-keys={proxy.max_keys}", parts.query)
            target = f"{parts.path}?{query}"
        if listing and proxy.list_gate is not None and "continuation-token" in parts.query:
            proxy.list_gate()
        if key in proxy.deny:
            body = b"" if self.command == "HEAD" else _DENY_XML
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_DENY_XML)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.command == "GET" and key in proxy.change_on_get:
            proxy.change_upstream(bucket, key)
        conn = proxy.upstream()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn.request(self.command, target, headers=headers)
        resp = conn.getresponse()
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
        if listing:
            data = proxy.rewrite_listing(resp.read(), parts.query)
            out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-length"]
            out_headers.append(("Content-Length", str(len(data))))
            self._send(resp.status, out_headers, [data])
            return
        rate = proxy.throttle.get(key) if self.command == "GET" else None
        self._send(resp.status, out_headers, _chunks(resp, rate), key=key)

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: Any, key: str | None = None
    ) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        for chunk in body:
            self.wfile.write(chunk)
            if key:
                self.server.proxy.record_bytes(key, len(chunk))


def _chunks(resp: http.client.HTTPResponse, rate: float | None) -> Any:
    size = 64 * 1024
    while True:
        chunk = resp.read(size)
        if not chunk:
            return
        if rate:
            time.sleep(len(chunk) / rate)
        yield chunk


class BatchProxy:
    def __init__(self, upstream: str, *, put: Callable[[str, str, bytes], None]) -> None:
        self._upstream = urlsplit(upstream)
        self._put = put
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bytes: Counter[str] = Counter()
        self.deny: set[str] = set()
        self.change_on_get: dict[str, bytes] = {}
        self.inject: list[tuple[str, int, str]] = []
        self.throttle: dict[str, float] = {}
        self.max_keys: int | None = None
        self.list_gate: Callable[[], None] | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None
        self._conns: list[http.client.HTTPConnection] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> BatchProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        with self._lock:
            for conn in self._conns:
                conn.close()

    def upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(
                self._upstream.hostname, self._upstream.port, timeout=60
            )
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def record(self, method: str, key: str) -> None:
        with self._lock:
            self.requests[(method, key)] += 1

    def record_bytes(self, key: str, n: int) -> None:
        with self._lock:
            self.bytes[key] += n

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes.clear()

    def gets(self) -> Counter[str]:
        with self._lock:
            return Counter(
                {k: n for (m, k), n in self.requests.items() if m == "GET" and "LIST " not in k}
            )

    def touched(self) -> set[str]:
        """Object keys that got any request (listing requests excluded)."""
        with self._lock:
            return {k for (_, k) in self.requests if not k.startswith("LIST ")}

    def change_upstream(self, bucket: str, key: str) -> None:
        with self._lock:
            data = self.change_on_get.pop(key, None)
        if data is not None:
            self._put(bucket, key, data)

    def rewrite_listing(self, body: bytes, query: str) -> bytes:
        if not self.inject or "continuation-token" in query or "start-after" in query:
            return body
        extra = "".join(
            f"<Contents><Key>{quote_plus(k)}</Key><ETag>&quot;{e}&quot;</ETag>"
            f"<Size>{s}</Size></Contents>"
            for k, s, e in self.inject
        ).encode()
        at = body.find(b"<Contents>")
        if at < 0:
            at = body.rfind(b"</ListBucketResult>")
        return body[:at] + extra + body[at:]
