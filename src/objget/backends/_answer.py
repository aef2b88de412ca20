"""One HTTP/1.1 answer on a kept-alive connection: the connection's read buffer, the head
parsed strictly, and how the body is framed.

The head is one status line and `Name: value` headers (latin-1; an obsolete folded line is
joined to the header before it), at most 64 KiB. The body ends where its framing says
(`frame`): `Content-Length` bytes, `chunked`, or the end of the connection when neither is
given (then the connection is not reused). No body for HEAD, 204 and 304.
"""

from __future__ import annotations

import _socket  # socket.py's wrapper is not needed (see `_conn`)
import contextlib
import mmap
from collections.abc import Iterator, Mapping

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import TypeVar, overload

    _T = TypeVar("_T")

__all__ = ["Conn", "Headers", "Stale", "content_length", "frame", "read_head"]

_MAX_HEAD = 64 * 1024
_BUF = 256 * 1024  # one recv takes a small object's whole answer when it has arrived
_KEEP = 16 * 1024  # what `trim` leaves of it (a page multiple): room for an answer's head
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


class Stale(Exception):
    """A reused connection ended before the first byte of the answer."""


class Headers(Mapping[str, str]):
    """An answer's headers: names case-insensitive, a repeated name's values joined by ", ",
    iterated in the order they came, each with its first spelling.

    >>> h = Headers([("ETag", '"a"'), ("x-meta", "1"), ("X-Meta", "2")])
    >>> h["etag"], h["X-META"], h.getlist("x-meta"), list(h)
    ('"a"', '1, 2', ['1', '2'], ['ETag', 'x-meta'])
    """

    __slots__ = ("_by",)

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self._by: dict[str, list[str]] = {}  # lower name -> [name, value, value...]
        for name, value in pairs or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        vals = self._by.get(name.lower())
        if vals is None:
            self._by[name.lower()] = [name, value]
        else:
            vals.append(value)

    def __getitem__(self, name: str) -> str:
        vals = self._by[name.lower()]
        return vals[1] if len(vals) == 2 else ", ".join(vals[1:])

    if TYPE_CHECKING:  # (typing's overload: for the type checker only)

        @overload
        def get(self, name: str, /) -> str | None: ...
        @overload
        def get(self, name: str, default: str, /) -> str: ...
        @overload
        def get(self, name: str, default: _T, /) -> str | _T: ...

    def get(self, name: str, default: object = None, /) -> object:
        vals = self._by.get(name.lower())
        if vals is None:
            return default
        return vals[1] if len(vals) == 2 else ", ".join(vals[1:])

    def getlist(self, name: str) -> list[str]:
        vals = self._by.get(name.lower())
        return vals[1:] if vals else []

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by

    def __iter__(self) -> Iterator[str]:
        return (vals[0] for vals in self._by.values())

    def __len__(self) -> int:
        return len(self._by)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Conn:
    """One kept-alive socket (plain or TLS), the pool key it belongs to, and the bytes read
    from it beyond what was consumed.

    The buffer is an anonymous mapping, not a `bytearray` (zero-filled, so all resident when
    made): its pages are resident only where a read wrote. A large answer's first read fills
    most of it with body bytes on a fast path; once the body goes on straight from the socket
    `trim` gives those pages back, and the connection's reads then use 16 KiB of it (the
    whole again for a head that needs more), so each stream of a download costs 16 KiB here,
    not 256 KiB (issue 16: peak RSS flat as streams are added)."""

    __slots__ = (
        "buf", "end", "high", "idle_since", "key", "mv", "room", "sock", "start", "tls_read",
    )  # fmt: skip

    def __init__(self, sock: _socket.socket, key: object, tls_read: object = None) -> None:
        self.sock = sock
        self.key = key
        # an SSLSocket's own OpenSSL read (`_sslobj.read`): one call per TLS record for bodies
        self.tls_read = tls_read
        self.buf = mmap.mmap(-1, _BUF, flags=mmap.MAP_PRIVATE)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.room = _BUF  # reads use the buffer's first `room` bytes
        self.high = 0  # the buffer's first `high` bytes may be resident
        self.idle_since = 0.0

    def fill(self) -> int:
        """Read more from the socket into the buffer (compacted first); 0 at EOF."""
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == self.room:
            if self.start == 0:
                if self.room == _BUF:
                    raise ValueError("the answer's header is too large")
                self.room = _BUF
            else:
                self.buf[: self.end - self.start] = self.buf[self.start : self.end]
                self.end -= self.start
                self.start = 0
        n = self.sock.recv_into(self.mv[self.end : self.room])
        self.end += n
        self.high = max(self.high, self.end)
        return n

    def trim(self) -> None:
        """Give back the buffer's pages beyond the first 16 KiB and read only into those from
        now on, when nothing is buffered (a large body, read straight into the caller's buffer
        from here on: this connection carries large answers)."""
        if self.start == self.end and self.high > _KEEP:
            self.start = self.end = 0
            if _DONTNEED is not None:
                self.buf.madvise(_DONTNEED, _KEEP, self.high - _KEEP)
            self.room = self.high = _KEEP

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


def read_head(conn: Conn, *, reused: bool) -> tuple[int, Headers, str]:
    """Status, headers and version of the next answer on `conn` (its bytes consumed). `Stale`
    when a reused connection ends before the answer's first byte."""
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
    headers = Headers()
    by_name = headers._by  # filled here directly: a few microseconds less per answer
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


def frame(method: str, status: int, headers: Headers, version: str) -> tuple[str, int, bool]:
    """(framing, length, reusable) of the answer's body, as http.client decides them:
    no body for HEAD, 204 and 304; `chunked` when it is the last transfer coding (another
    coding: to the end of the connection); else `Content-Length` (an invalid one: to the
    end). Reusable: HTTP/1.1 without `Connection: close`, and a body with an end of its own."""
    connection = headers.get("connection")
    reusable = version == "HTTP/1.1" and (
        connection is None or "close" not in {t.strip().lower() for t in connection.split(",")}
    )
    coding = (headers.get("transfer-encoding") or "").strip().lower()
    if method == "HEAD" or status in (204, 304):
        return "length", 0, reusable
    if coding:
        if coding.rsplit(",", 1)[-1].strip() != "chunked":
            return "close", 0, False
        return "chunked", 0, reusable
    size = content_length(headers.get("content-length"))
    if size is None:
        return "close", 0, False
    return "length", size, reusable


def content_length(value: str | None) -> int | None:
    """A Content-Length header as an int; None when absent, malformed or absurd."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    n = int(value)
    return n if n < 2**63 else None
