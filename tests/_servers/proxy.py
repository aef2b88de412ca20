"""A forward HTTP proxy for the proxy tests, over real TCP: absolute-form requests
(`GET http://host:port/path HTTP/1.1`) forwarded with their target exactly as received, and
`CONNECT host:port` tunnels for https. It counts what it saw:

- `requests`: (method, absolute target as written) of every forwarded request;
- `connects`: "host:port" of every CONNECT;
- `auth_seen`: the `Proxy-Authorization` value of every request and CONNECT (None if absent).

With `auth=(user, password)` it answers 407 to anything without that Basic credential.
Connections to the client are kept alive (bodies re-framed with Content-Length); each forwarded
request opens its own upstream connection. Every wait is bounded.

```python
with ForwardProxy() as proxy:
    objget.download(url, dest, config=DownloadConfig(proxy=proxy.url))
    assert proxy.requests
```
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import socketserver
import threading
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ForwardProxy"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}
_TIMEOUT = 30.0


class ForwardProxy:
    """A counting forward proxy on 127.0.0.1 (a free port)."""

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.requests: list[tuple[str, str]] = []
        self.connects: list[str] = []
        self.auth_seen: list[str | None] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}
        )

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # --- one client connection -------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(_TIMEOUT)
        reader = sock.makefile("rb")
        try:
            for _ in range(100_000):  # requests on one kept-alive connection
                head = _read_head(reader)
                if head is None or self._stop.is_set():
                    return
                method, target, headers = head
                given = headers.get("proxy-authorization")
                with self.lock:
                    self.auth_seen.append(given)
                if not self._authorized(given):
                    sock.sendall(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="objget-test"\r\n'
                        b"Content-Length: 0\r\n\r\n"
                    )
                    if method == "CONNECT":
                        return
                    continue
                if method == "CONNECT":
                    with self.lock:
                        self.connects.append(target)
                    self._tunnel(sock, target)
                    return
                with self.lock:
                    self.requests.append((method, target))
                self._forward(sock, method, target, headers, reader)
        except (OSError, ValueError):
            return
        finally:
            reader.close()

    def _authorized(self, given: str | None) -> bool:
        if self.auth is None:
            return True
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return given == f"Basic {token}"

    def _forward(
        self,
        sock: socket.socket,
        method: str,
        target: str,
        headers: dict[str, str],
        reader: socket.SocketIO | object,
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        origin = target[len("http://") + len(parts.netloc) :] or "/"
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=_TIMEOUT)
        try:
            upstream.putrequest(method, origin, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name not in _HOP and not name.startswith("proxy-"):
                    upstream.putheader(name, value)
            upstream.endheaders()
            resp = upstream.getresponse()
            body = resp.read()
            lines = [f"HTTP/1.1 {resp.status} {resp.reason}"]
            for name, value in resp.getheaders():
                low = name.lower()
                if low in _HOP or (low == "content-length" and method != "HEAD"):
                    continue
                lines.append(f"{name}: {value}")
            if method != "HEAD":
                lines.append(f"Content-Length: {len(body)}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        finally:
            upstream.close()

    def _tunnel(self, sock: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=_TIMEOUT)
        except (OSError, ValueError):
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = [sock, upstream]
            for _ in range(10_000_000):
                if self._stop.is_set():
                    return
                ready, _, _ = select.select(ends, [], [], 0.5)
                for s in ready:
                    data = s.recv(256 * 1024)
                    if not data:
                        return
                    (upstream if s is sock else sock).sendall(data)


def _read_head(reader: object) -> tuple[str, str, dict[str, str]] | None:
    """(method, target as written, lower-cased headers) of the next request; None at EOF."""
    readline = reader.readline  # type: ignore[attr-defined]
    line = readline(65537)
    if not line:
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    for _ in range(200):
        raw = readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers
