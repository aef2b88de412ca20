"""A buffering HTTP proxy in front of a test server, for answers a real server would not give.

`Forward(upstream_url, alter)` forwards every HEAD and GET unchanged (the Host header included,
so an S3 signature still matches), reads the whole answer, lets `alter` change it, and sends
it on with a Content-Length of its own. `alter(exchange)` gets an `Exchange` (the request's
method, path, headers; the answer's status, headers and body) and changes it in place. It runs
on the proxy's handler threads: state it keeps needs a lock (`Forward.lock`).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .background import Background

__all__ = ["Exchange", "Forward", "flip_byte"]


@dataclass
class Exchange:
    method: str
    path: str
    request_headers: dict[str, str]  # names in lower case
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def key(self) -> str:
        """The object key of a path-style S3 request (`/bucket/key?query`)."""
        return self.path.split("?")[0].split("/", 2)[-1]


def flip_byte(body: bytes, at: int, mask: int) -> bytes:
    return body[:at] + bytes([body[at] ^ mask]) + body[at + 1 :]


class Forward(Background):
    def __init__(self, upstream: str, alter: Callable[[Exchange], None]) -> None:
        self.lock = threading.Lock()
        target = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._forward()

            def do_GET(self) -> None:
                self._forward()

            def _forward(self) -> None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    conn.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for k, v in self.headers.items():
                        conn.putheader(k, v)
                    conn.endheaders()
                    resp = conn.getresponse()
                    ex = Exchange(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        resp.status,
                        resp.getheaders(),
                        resp.read(),
                    )
                finally:
                    conn.close()
                alter(ex)
                self.send_response(ex.status)
                drop: tuple[str, ...] = ("transfer-encoding", "connection")
                if self.command != "HEAD":
                    drop += ("content-length",)
                    self.send_header("Content-Length", str(len(ex.body)))
                for k, v in ex.headers:
                    if k.lower() not in drop:
                        self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(ex.body)

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
