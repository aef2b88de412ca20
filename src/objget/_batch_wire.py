"""A lean HTTP/1.1 path for the batch's many small plain-`http://` GETs and HEADs.

A batch of 64 KiB objects spends more CPU in the HTTP client than in anything else: urllib3's
pool manager, `Retry` and `Timeout` objects, http.client's status line and `email`-parser
headers come to about 0.45 ms per request on the bench machine, against about 0.1 ms for
writing the request and parsing the answer directly on a kept-alive socket. `WireTransport`
is the `Transport` the batch hands its backends: backends still build, sign and judge every
request exactly as before; only the bytes on the wire take the short way. Anything that
is not a plain-HTTP GET/HEAD to a target urllib3 would send unchanged (TLS, a URL with
characters it would escape, dot segments, user info), every request a forward proxy applies
to (`http_proxy`, `DownloadConfig.proxy`: the proxy must see it) and redirects to follow go
through urllib3 as before.

Answers are parsed and framed by `_batch_answer`. A connection goes back to the idle list
only after its body was read to the end with no byte to spare. One the server closed
meanwhile is noticed before reuse (when it idled for more than a second: readable while
idle) or by an answer that ends before its first byte; then the request is sent once more
on a new connection (GET and HEAD only). Read timeouts are the kernel's (SO_RCVTIMEO on
Linux). Errors and their messages are the ones `Transport` gives for the same failures.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping

from ._batch_answer import AnswerBody, Conn, Stale, frame, read_head
from ._config import DownloadConfig
from ._exceptions import TransportError
from .backends._proxy import proxy_rules
from .backends._transport import ResponseBody, Transport, redact_url

__all__ = ["WireTransport"]

log = logging.getLogger("objget")

_LINUX = sys.platform.startswith("linux")
_KERNEL_TIMEOUTS = _LINUX and hasattr(socket, "SO_RCVTIMEO")
_PEEK_FLAGS = socket.MSG_PEEK | socket.MSG_DONTWAIT if _LINUX else 0
_TRUST_IDLE = 1.0  # seconds a released connection is reused without looking at it first
# What urllib3 sends as is; anything else it would percent-encode or normalize first.
_NEEDS_URLLIB3 = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-F]{2})")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")
_BAD_NAME = re.compile(r"[: \t\r\n]")


def _target(url: str) -> tuple[str, int, str, str] | None:
    """(host, port, Host header, request target) of a plain-HTTP URL the short path sends
    byte for byte as urllib3 would; None for anything else."""
    if not url.startswith("http://"):
        return None
    rest = url[7:]
    slash, mark = rest.find("/"), rest.find("?")
    cut = len(rest) if slash < 0 and mark < 0 else slash if mark < 0 or 0 <= slash < mark else mark
    netloc, target = rest[:cut], rest[cut:]
    if not netloc or "@" in netloc or "[" in netloc or "#" in target:
        return None
    host, colon, port_text = netloc.partition(":")
    if colon and not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        return None
    if not host or _NEEDS_URLLIB3.search(host) or not host.isascii():
        return None
    target = target if target.startswith("/") else "/" + target
    path = target.partition("?")[0]
    if _NEEDS_URLLIB3.search(target) or _DOT_SEGMENT.search(path):
        return None
    host = host.lower()
    port = int(port_text) if colon else 80
    return host, port, host if port == 80 else f"{host}:{port}", target


class WireTransport(Transport):
    """`Transport` whose plain-HTTP GETs and HEADs go over lean kept-alive connections;
    every other request goes to `fallback()` (a urllib3 `Transport`, asked for only when
    first needed: a plain-HTTP batch then builds no TLS context at all). The fallback is
    not closed here: it belongs to whoever made it (the Downloader)."""

    def __init__(self, config: DownloadConfig, *, fallback: Callable[[], Transport]) -> None:
        # No super().__init__: the urllib3 pool is the fallback's, made on demand.
        self.config = config
        self._fallback_of = fallback
        self._fallback: Transport | None = None
        self._keep = max(4, config.max_workers)
        self._idle: dict[tuple[str, int], list[Conn]] = {}
        self._idle_lock = threading.Lock()
        self._closed = False
        self._proxies = proxy_rules(config.proxy, config.no_proxy)

    def _urllib3(self) -> Transport:
        with self._idle_lock:
            if self._fallback is None:
                self._fallback = self._fallback_of()
            return self._fallback

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        source: str,
        redirect: bool = True,
    ) -> ResponseBody:
        where = _target(url) if method in ("GET", "HEAD") else None
        if where is not None and self._proxies.http is not None and self._proxies.for_url(url):
            where = None  # the proxy's business: urllib3 sends it there
        if where is None:
            return self._urllib3().request(
                method, url, headers=headers, source=source, redirect=redirect
            )
        host, port, host_header, target = where
        raw = _request_bytes(method, target, host_header, headers, self.config.user_agent)
        body = self._exchange(method, (host, port), raw, source)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d", method, redact_url(url), body.status)
        if redirect and 300 <= body.status < 400 and body.headers.get("Location"):
            body.read_error_body(65536)
            return self._urllib3().request(
                method, url, headers=headers, source=source, redirect=True
            )
        return body

    def _exchange(self, method: str, key: tuple[str, int], raw: bytes, source: str) -> AnswerBody:
        conn = self._take(key)
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                conn = self._connect(key, source)
            try:
                return self._send(conn, method, raw, source, reused=reused)
            except Stale:
                conn.close()
                conn, reused = None, False
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, conn: Conn, method: str, raw: bytes, source: str, *, reused: bool
    ) -> AnswerBody:
        host = conn.key[0]
        try:
            conn.sock.sendall(raw)
            while True:
                status, headers, version = read_head(conn, reused=reused)
                if status >= 200 or status == 101:
                    break
        except Stale:
            raise
        except (TimeoutError, BlockingIOError) as exc:
            raise TransportError(
                f"{host} did not answer in time (read timeout)", source=source
            ) from exc
        except (OSError, ValueError) as exc:
            if reused and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                raise Stale from exc
            raise TransportError(
                f"connection to {host} failed: {exc.__class__.__name__}", source=source
            ) from exc
        if status == 101:
            raise TransportError(f"connection to {host} failed: unexpected 101", source=source)
        framing, length, reusable = frame(method, status, headers, version)
        return AnswerBody(
            self.release, conn, read_timeout=self.config.timeouts.read, status=status,
            headers=headers, framing=framing, length=length, reusable=reusable, source=source,
        )  # fmt: skip

    def _take(self, key: tuple[str, int]) -> Conn | None:
        while True:
            with self._idle_lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return None
            # Idle for a moment only (the common case in a batch): reused as is; a server
            # that closed it meanwhile is caught by the retry of a request that got no byte.
            if time.monotonic() - conn.idle_since < _TRUST_IDLE or _idle_ok(conn.sock):
                return conn
            conn.close()

    def release(self, conn: Conn) -> None:
        """Keep a connection whose answer was read to its end for the next request."""
        with self._idle_lock:
            idle = self._idle.setdefault(conn.key, [])
            if not self._closed and len(idle) < self._keep:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return
        conn.close()

    def _connect(self, key: tuple[str, int], source: str) -> Conn:
        host, port = key
        timeouts = self.config.timeouts
        try:
            sock = socket.create_connection((host, port), timeout=timeouts.connect)
        except socket.gaierror as exc:
            raise TransportError(
                f"cannot resolve host {host} (DNS lookup failed)", source=source
            ) from exc
        except TimeoutError as exc:
            raise TransportError(f"connecting to {host} timed out", source=source) from exc
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {host}: connection refused or unreachable", source=source
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _KERNEL_TIMEOUTS:
            # The kernel enforces the read timeout: Python's own (a poll() before every
            # recv and send) would cost a system call and a GIL round trip each time.
            sec = int(timeouts.read)
            tv = struct.pack("@ll", sec, int((timeouts.read - sec) * 1e6))
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        else:
            sock.settimeout(timeouts.read)
        return Conn(sock, key)

    def close(self) -> None:
        with self._idle_lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _idle_ok(sock: socket.socket) -> bool:
    """An idle kept-alive socket with nothing to read: not closed by the server, and no
    stray bytes after the last answer."""
    if _PEEK_FLAGS:
        try:
            sock.recv(1, _PEEK_FLAGS)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False  # EOF, or bytes nobody asked for
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], user_agent: str
) -> bytes:
    """The request head as http.client would write it for urllib3: our Host and
    `Accept-Encoding: identity` unless given, then the headers in order."""
    lower = {k.lower() for k in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in lower:
        lines.append(f"Host: {host}")
    if "user-agent" not in lower:
        lines.append(f"User-Agent: {user_agent}")
    if "accept-encoding" not in lower:
        lines.append("Accept-Encoding: identity")
    for name, value in headers.items():
        if not name or _BAD_NAME.search(name) or "\r" in value or "\n" in value:
            raise ValueError(f"invalid HTTP header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")
