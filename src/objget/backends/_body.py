"""The body of one answer (`RangeBody`): read straight into the caller's buffer, never past
its end, and its connection handed back to the pool only when it was read exactly to its end.

`readinto` first hands out the bytes that arrived with the head (from the connection's
buffer), then fills the caller's buffer from the socket: `recv_into` on plain TCP, and on TLS
OpenSSL's read of one record per call (`SSLSocket._sslobj.read`: the Python layers of
`SSLSocket.recv_into` cost ~0.1 s of CPU per GiB). It fills as much of the buffer as the body
has before it returns, as `http.client` did, so the engine writes large chunks.

`abort` breaks a read blocked in another thread (`shutdown(SHUT_RDWR)` on the socket).
"""

from __future__ import annotations

import _socket  # socket.py's wrapper is not needed (see `_conn`)
import contextlib
import zlib
from collections.abc import Callable

from ._answer import _BUF, _KEEP, Conn, Headers, content_length
from ._errors import Truncated, read_error

__all__ = ["ResponseBody"]


class ResponseBody:
    """One answer: `status`, `headers`, `content_range`, `content_length`, and its body."""

    def __init__(
        self,
        release: Callable[[Conn], None],
        conn: Conn,
        *,
        read_timeout: float,
        status: int,
        headers: Headers,
        framing: str,
        length: int,
        reusable: bool,
        source: str,
    ) -> None:
        self._release = release
        self._conn: Conn | None = conn
        self._sock = conn.sock  # kept for abort() after the body let go of its connection
        self._source = source
        self._timeout = read_timeout
        self.status = status
        self.headers = headers
        self.content_range = headers.get("content-range")
        self.content_length = content_length(headers.get("content-length"))
        self._framing = framing  # "length", "chunked" or "close"
        self._left = length  # bytes of the body (or of the current chunk) not read yet
        self._done = framing == "length" and length == 0
        self._reusable = reusable
        self._pending: OSError | None = None  # an error that came after the bytes last read

    def readinto(self, buf: memoryview, /) -> int:
        conn = self._conn
        if conn is None or self._done or not len(buf):
            return 0
        try:
            if self._pending is not None:  # the read before got bytes, then this error
                pending, self._pending = self._pending, None
                raise pending
            return self._read(conn, buf)
        except (OSError, ValueError) as exc:  # BlockingIOError: SO_RCVTIMEO expired
            self._drop()
            raise read_error(exc, self._source, self._timeout) from exc

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
            if conn.high > _KEEP and self._left > _BUF:  # a large body: pages back (`trim`)
                conn.trim()
            n = self._fill(conn, buf, want)
        if n == 0:
            if framing == "close":
                self._reusable = False
                self._done = True
                return 0
            raise Truncated
        if framing != "close":
            self._left -= n
            if self._left == 0:
                if framing == "length":
                    self._done = True
                elif conn.line():  # the CRLF after a chunk's data
                    raise ValueError("chunk data longer than its size")
        return n

    def _fill(self, conn: Conn, buf: memoryview, want: int) -> int:
        """Read from the socket into `buf[:want]` until it is full or the peer ends. An error
        after some bytes came in is kept for the next call (`_pending`): the caller gets those
        bytes first (a buffer of 1 MiB may hold most of a part), so a retry starts after them."""
        n = 0
        try:
            read = conn.tls_read
            if read is not None:
                while n < want:
                    try:
                        got: int = read(want - n, buf[n:want])  # type: ignore[operator]
                    except OSError as exc:
                        if type(exc).__name__ != "SSLEOFError":  # closed without close_notify
                            raise
                        got = 0
                    if not got:
                        break
                    n += got
                return n
            recv_into = conn.sock.recv_into
            while n < want:
                got = recv_into(buf[n:want], want - n)
                if not got:
                    break
                n += got
        except OSError as exc:
            if n == 0:
                raise
            self._pending = exc
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
        """Break a read in progress in another thread (cancel, stall): the socket's read side
        is shut, so a blocked recv returns at once. The TLS layer is left alone (the plain
        socket's shutdown): the read then ends as a failed one, never as plaintext."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                _socket.socket.shutdown(self._sock, _socket.SHUT_RDWR)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._reusable and conn.start == conn.end:
            self._release(conn)
        else:
            conn.close()

    def read_error_body(self, limit: int = 65536) -> bytes:
        """Up to `limit` bytes of the body (gzip/deflate decoded), then close; b"" when the
        read fails (an error answer's text is a detail, never a second failure)."""
        out = bytearray()
        chunk = memoryview(bytearray(min(limit, 256 * 1024) or 1))
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
