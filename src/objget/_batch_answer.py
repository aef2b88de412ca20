"""One HTTP/1.1 answer on a kept-alive connection, for the batch's lean wire path
(`_batch_wire`): the head parsed strictly, the body framed exactly.

The head is one status line and `Name: value` headers (latin-1; an obsolete folded line is
joined to the header before it), at most 64 KiB. The body ends where its framing says:
`Content-Length` bytes, `chunked` (sizes, extensions and trailers read and checked), or the
end of the connection when neither is given (then the connection is not reused). A body is
never read past its end, so the next answer on the connection starts clean; a connection
goes back to its pool only when the body was read to the end and no byte is left over.
"""

from __future__ import annotations

import contextlib
import socket
import zlib
from collections.abc import Callable

from urllib3 import HTTPHeaderDict

from ._exceptions import TransportError
from .backends._transport import ResponseBody, content_length

__all__ = ["AnswerBody", "Conn", "Stale", "frame", "header", "read_head"]

_MAX_HEAD = 64 * 1024
_BUF = 256 * 1024  # one recv takes a small object's whole answer when it has arrived


class Stale(Exception):
    """A reused connection ended before the first byte of the answer."""


class _Truncated(ConnectionError):
    """The connection ended inside a body of known length."""


class Conn:
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


class AnswerBody(ResponseBody):
    """`ResponseBody` over a `Conn`: `readinto` fills the caller's buffer from the bytes
    already read, then straight from the socket, never past the end of this body."""

    def __init__(
        self,
        release: Callable[[Conn], None],
        conn: Conn,
        *,
        read_timeout: float,
        status: int,
        headers: HTTPHeaderDict,
        framing: str,
        length: int,
        reusable: bool,
        source: str,
    ) -> None:
        # ResponseBody's own __init__ wraps a urllib3 response; this one has none.
        self._release = release
        self._conn: Conn | None = conn
        self._source = source
        self._timeout = read_timeout
        self.status = status
        self.headers = headers
        self.content_range = header(headers, "content-range")
        self.content_length = content_length(header(headers, "content-length"))
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

    def take_buffered(self, limit: int) -> memoryview:
        """Up to `limit` bytes of this body that already arrived with its head, consumed, as
        a view of the connection's buffer (no copy); empty when there are none, or for a
        chunked body. The view is valid only until the next call on this body."""
        conn = self._conn
        if conn is None or self._done or self._framing == "chunked":
            return memoryview(b"")
        n = min(limit, conn.end - conn.start)
        if self._framing == "length":
            n = min(n, self._left)
            self._left -= n
            self._done = self._left == 0
        view = conn.mv[conn.start : conn.start + n]
        conn.start += n
        return view

    def _drop(self) -> None:
        """After a failed read: the connection is closed, never reused."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _read(self, conn: Conn, buf: memoryview) -> int:
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

    def _next_chunk(self, conn: Conn) -> bool:
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
            self._release(conn)
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


def frame(method: str, status: int, headers: HTTPHeaderDict, version: str) -> tuple[str, int, bool]:
    """(framing, length, reusable) of the answer's body, as http.client decides them:
    no body for HEAD, 204 and 304; `chunked` when it is the last transfer coding (another
    coding: to the end of the connection); else `Content-Length` (an invalid one: to the
    end). Reusable: HTTP/1.1 without `Connection: close`, and a body with an end of its own."""
    connection = header(headers, "connection")
    reusable = version == "HTTP/1.1" and (
        connection is None or "close" not in {t.strip().lower() for t in connection.split(",")}
    )
    coding = (header(headers, "transfer-encoding") or "").strip().lower()
    if method == "HEAD" or status in (204, 304):
        return "length", 0, reusable
    if coding:
        if coding.rsplit(",", 1)[-1].strip() != "chunked":
            return "close", 0, False
        return "chunked", 0, reusable
    size = content_length(header(headers, "content-length"))
    if size is None:
        return "close", 0, False
    return "length", size, reusable


def header(headers: HTTPHeaderDict, lower: str) -> str | None:
    """`headers.get(name)` for a lower-case `name`, without the Mapping machinery (a few
    microseconds a lookup, several lookups an answer): several values joined by ", "."""
    vals = headers._container.get(lower)
    if vals is None:
        return None
    return vals[1] if len(vals) == 2 else ", ".join(vals[1:])


def read_head(conn: Conn, *, reused: bool) -> tuple[int, HTTPHeaderDict, str]:
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
                raise Stale
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
