"""A lean HTTP/1.1 path for the batch's many small plain-`http://` GETs and HEADs.

A batch of 64 KiB objects spends more CPU in the HTTP client than in anything else: urllib3's
pool manager, `Retry` and `Timeout` objects, http.client's status line and `email`-parser
headers come to about 0.45 ms per request on the bench machine, against about 0.1 ms for
writing the request and parsing the answer directly on a kept-alive socket. `WireTransport`
is the `Transport` the batch hands its backends: backends still build, sign and judge every
request exactly as before; only the bytes on the wire take the short way. Anything that
is not a plain-HTTP GET/HEAD to a target urllib3 would send unchanged (TLS, a URL with
characters it would escape, dot segments, user info) and redirects to follow go through
urllib3 as before.

The answer is parsed strictly: one status line, `Name: value` headers (latin-1, folded lines
joined), then a body framed by `Content-Length`, `chunked`, or the end of the connection.
A connection goes back to the idle list only after its body was read to the end with no
byte to spare; a kept-alive connection the server closed meanwhile is noticed before reuse
(readable while idle) or by an answer that ends before its first byte, and the request is
sent once more on a new connection (GET and HEAD only). Errors and their messages are the
ones `Transport` gives for the same failures.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping

from urllib3 import HTTPHeaderDict

from ._config import DownloadConfig
from ._exceptions import TransportError
from .backends._transport import ResponseBody, Transport, redact_url

__all__ = ["WireTransport"]

log = logging.getLogger("objget")

_LINUX = sys.platform.startswith("linux")
_KERNEL_TIMEOUTS = _LINUX and hasattr(socket, "SO_RCVTIMEO")
_PEEK_FLAGS = socket.MSG_PEEK | socket.MSG_DONTWAIT if _LINUX else 0
_MAX_HEAD = 64 * 1024
_BUF = 256 * 1024  # one recv takes a small object's whole answer when it has arrived
_TRUST_IDLE = 1.0  # seconds a released connection is reused without looking at it first
# What urllib3 sends as is; anything else it would percent-encode or normalize first.
_NEEDS_URLLIB3 = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-F]{2})")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")


class _Stale(Exception):
    """A reused connection ended before the first byte of the answer."""


class _Truncated(ConnectionError):
    """The connection ended inside a body of known length."""


def _target(url: str) -> tuple[str, int, str, str] | None:
    """(host, port, Host header, request target) of a plain-HTTP URL the short path sends
    byte for byte as urllib3 would; None for anything else."""
    if not url.startswith("http://"):
        return None
    rest = url[7:]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
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


class _Conn:
    """One kept-alive socket and the bytes read from it beyond what was consumed."""

    __slots__ = ("buf", "end", "idle_since", "key", "mv", "sock", "start")

    def __init__(self, sock: socket.socket, key: tuple[str, int]) -> None:
        self.sock = sock
        self.key = key
        self.buf = bytearray(_BUF)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.idle_since = 0.0

    def fill(self) -> int:
        """Read more from the socket into the buffer (compacted first); 0 at EOF."""
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            if self.start == 0:
                raise ValueError("the answer's header is too large")
            self.buf[: self.end - self.start] = self.buf[self.start : self.end]
            self.end -= self.start
            self.start = 0
        n = self.sock.recv_into(self.mv[self.end :])
        self.end += n
        return n

    def line(self) -> bytes:
        """One CRLF-terminated line (without the CRLF), for chunk sizes and trailers."""
        while True:
            i = self.buf.find(b"\r\n", self.start, self.end)
            if i >= 0:
                out = bytes(self.buf[self.start : i])
                self.start = i + 2
                return out
            if self.end - self.start > 4096:
                raise ValueError("a chunk-size line is too long")
            if self.fill() == 0:
                raise ConnectionError("the connection closed inside a chunked body")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _WireBody(ResponseBody):
    """`ResponseBody` over a `_Conn`: `readinto` fills the caller's buffer from the bytes
    already read, then straight from the socket, never past the end of this body."""

    def __init__(
        self,
        owner: WireTransport,
        conn: _Conn,
        *,
        status: int,
        headers: HTTPHeaderDict,
        framing: str,
        length: int,
        reusable: bool,
        source: str,
    ) -> None:
        # ResponseBody's own __init__ wraps a urllib3 response; this one has none.
        self._owner = owner
        self._conn: _Conn | None = conn
        self._source = source
        self._timeout = owner.config.timeouts.read
        self.status = status
        self.headers = headers
        self.content_range = headers.get("Content-Range")
        self.content_length = _length(headers.get("Content-Length"))
        self._framing = framing  # "length", "chunked" or "close"
        self._left = length  # bytes of the body (or of the current chunk) not read yet
        self._done = framing == "length" and length == 0
        self._reusable = reusable

    def readinto(self, buf: memoryview, /) -> int:
        conn = self._conn
        if conn is None or self._done or not len(buf):
            return 0
        try:
            return self._read(conn, buf)
        except (TimeoutError, BlockingIOError) as exc:  # BlockingIOError: SO_RCVTIMEO expired
            self._drop()
            raise TransportError(
                f"{self._source}: no data for {self._timeout:g} s (stalled connection)",
                source=self._source,
            ) from exc
        except _Truncated as exc:
            self._drop()
            raise TransportError(
                f"{self._source}: connection closed early (body truncated)", source=self._source
            ) from exc
        except (OSError, ValueError) as exc:
            self._drop()
            raise TransportError(
                f"{self._source}: connection failed while reading: {exc.__class__.__name__}",
                source=self._source,
            ) from exc

    def _drop(self) -> None:
        """After a failed read: the connection is closed, never reused."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _read(self, conn: _Conn, buf: memoryview) -> int:
        framing = self._framing
        if framing == "chunked" and self._left == 0 and not self._next_chunk(conn):
            return 0
        want = len(buf) if framing == "close" else min(len(buf), self._left)
        have = conn.end - conn.start
        if have:
            n = min(want, have)
            buf[:n] = conn.mv[conn.start : conn.start + n]
            conn.start += n
        else:
            n = conn.sock.recv_into(buf, want)
        if n == 0:
            if framing == "close":
                self._reusable = False
                self._done = True
                return 0
            raise _Truncated
        if framing != "close":
            self._left -= n
            if self._left == 0:
                if framing == "length":
                    self._done = True
                elif conn.line():  # the CRLF after a chunk's data
                    raise ValueError("chunk data longer than its size")
        return n

    def _next_chunk(self, conn: _Conn) -> bool:
        text = conn.line().split(b";", 1)[0].strip()
        if not text or len(text) > 16 or text.strip(b"0123456789abcdefABCDEF"):
            raise ValueError("bad chunk size")
        size = int(text, 16)
        if size:
            self._left = size
            return True
        while conn.line():  # trailer fields, up to the empty line
            pass
        self._done = True
        return False

    def abort(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._reusable and conn.start == conn.end:
            self._owner.release(conn)
        else:
            conn.close()

    def read_error_body(self, limit: int = 65536) -> bytes:
        out = bytearray()
        chunk = memoryview(bytearray(min(limit, _BUF) or 1))
        try:
            while len(out) < limit:
                n = self.readinto(chunk[: limit - len(out)])
                if n == 0:
                    break
                out += chunk[:n]
            data = bytes(out)
            coding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if coding in ("gzip", "x-gzip", "deflate"):
                wbits = 47 if coding != "deflate" else zlib.MAX_WBITS
                data = zlib.decompressobj(wbits).decompress(data, limit)
        except Exception:
            data = b""
        self.close()
        return data


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
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._idle_lock = threading.Lock()
        self._closed = False

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

    def _exchange(self, method: str, key: tuple[str, int], raw: bytes, source: str) -> _WireBody:
        conn = self._take(key)
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                conn = self._connect(key, source)
            try:
                return self._send(conn, method, raw, source, reused=reused)
            except _Stale:
                conn.close()
                conn, reused = None, False
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, conn: _Conn, method: str, raw: bytes, source: str, *, reused: bool
    ) -> _WireBody:
        host = conn.key[0]
        try:
            conn.sock.sendall(raw)
            while True:
                status, headers, version = _read_head(conn, reused=reused)
                if status >= 200 or status == 101:
                    break
        except _Stale:
            raise
        except (TimeoutError, BlockingIOError) as exc:
            raise TransportError(
                f"{host} did not answer in time (read timeout)", source=source
            ) from exc
        except (OSError, ValueError) as exc:
            if reused and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                raise _Stale from exc
            raise TransportError(
                f"connection to {host} failed: {exc.__class__.__name__}", source=source
            ) from exc
        if status == 101:
            raise TransportError(f"connection to {host} failed: unexpected 101", source=source)
        tokens = {t.strip().lower() for t in (headers.get("Connection") or "").split(",")}
        reusable = version == "HTTP/1.1" and "close" not in tokens
        coding = (headers.get("Transfer-Encoding") or "").strip().lower()
        if method == "HEAD" or status in (204, 304):
            framing, length = "length", 0
        elif coding:
            if coding.rsplit(",", 1)[-1].strip() != "chunked":
                framing, length, reusable = "close", 0, False
            else:
                framing, length = "chunked", 0
        else:
            size = _length(headers.get("Content-Length"))  # invalid: to the end, as http.client
            framing, length = ("length", size) if size is not None else ("close", 0)
            reusable = reusable and size is not None
        return _WireBody(
            self, conn, status=status, headers=headers, framing=framing, length=length,
            reusable=reusable, source=source,
        )  # fmt: skip

    def _take(self, key: tuple[str, int]) -> _Conn | None:
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

    def release(self, conn: _Conn) -> None:
        """Keep a connection whose answer was read to its end for the next request."""
        with self._idle_lock:
            idle = self._idle.setdefault(conn.key, [])
            if not self._closed and len(idle) < self._keep:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return
        conn.close()

    def _connect(self, key: tuple[str, int], source: str) -> _Conn:
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
        return _Conn(sock, key)

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
        if not name or any(c in name for c in ": \t\r\n") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid HTTP header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _read_head(conn: _Conn, *, reused: bool) -> tuple[int, HTTPHeaderDict, str]:
    """Status, headers and version of the next answer on `conn` (its bytes consumed)."""
    first = True
    while True:
        end = conn.buf.find(b"\r\n\r\n", conn.start, conn.end)
        if end >= 0:
            break
        if conn.end - conn.start > _MAX_HEAD:
            raise ValueError("the answer's header is too large")
        if conn.fill() == 0:
            if reused and first and conn.start == conn.end:
                raise _Stale
            raise ConnectionError("the connection closed before a complete answer header")
        first = False
    head = conn.buf[conn.start : end].decode("latin-1")
    conn.start = end + 4
    status_line, *lines = head.split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and len(code) == 3):
        raise ValueError("bad status line")
    headers = HTTPHeaderDict()
    # Filled the way HTTPHeaderDict.add fills it ({lower name: [name, value, ...]}), without
    # its per-header checks: a fifth of this function's time (a unit test pins the result).
    by_name = headers._container
    vals: list[str] | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and vals is not None:
            vals[-1] = f"{vals[-1]} {line.strip()}"  # an obsolete folded continuation line
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("bad header line")
        lower = name.lower()
        vals = by_name.get(lower)
        if vals is None:
            vals = by_name[lower] = [name, value.strip()]
        else:
            vals.append(value.strip())
    return int(code), headers, version


def _length(value: str | None) -> int | None:
    """A Content-Length header as an int; None when absent, malformed or absurd."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    n = int(value)
    return n if n < 2**63 else None
