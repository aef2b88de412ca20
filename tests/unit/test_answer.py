"""ResponseBody.take_buffered: the body bytes that came with the head, handed out without a
copy, never past the body's end, and counted as read."""

from __future__ import annotations

import socket

from objget.backends._answer import Conn, frame, read_head
from objget.backends._body import ResponseBody


def _answer(raw: bytes) -> tuple[ResponseBody, Conn, list[Conn]]:
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    conn = Conn(ours, ("127.0.0.1", 80))
    status, headers, version = read_head(conn, reused=False)
    framing, length, reusable = frame("GET", status, headers, version)
    released: list[Conn] = []
    body = ResponseBody(
        released.append, conn, read_timeout=5.0, status=status, headers=headers,
        framing=framing, length=length, reusable=reusable, source="test",
    )  # fmt: skip
    return body, conn, released


def test_buffered_bytes_stop_at_the_limit_then_readinto_goes_on() -> None:
    body, conn, _ = _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
    assert bytes(body.take_buffered(4)) == b"0123"
    buf = memoryview(bytearray(16))
    n = body.readinto(buf)
    assert bytes(buf[:n]) == b"456789"
    assert body.readinto(buf) == 0
    conn.close()


def test_buffered_bytes_never_run_past_the_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n"
    body, conn, released = _answer(raw)
    assert bytes(body.take_buffered(100)) == b"abc"
    assert len(body.take_buffered(100)) == 0  # done: nothing more
    buf = memoryview(bytearray(8))
    assert body.readinto(buf) == 0
    assert bytes(conn.buf[conn.start : conn.end]) == b"HTTP/1.1 200 OK\r\n"
    body.close()
    assert released == []  # bytes left over: the connection is not reused
    conn.close()


def test_a_chunked_body_is_not_handed_out_raw() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    body, conn, released = _answer(raw)
    assert len(body.take_buffered(100)) == 0
    buf = memoryview(bytearray(8))
    assert bytes(buf[: body.readinto(buf)]) == b"abc"
    assert body.readinto(buf) == 0
    body.close()
    assert released == [conn]
    conn.close()


def test_a_tls_record_read_fills_the_buffer_record_by_record() -> None:
    """With OpenSSL's read (`Conn.tls_read`), readinto fills the caller's buffer up to the
    body's end, one record per call, and a ragged EOF ends it like a truncation."""
    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    records = [b"0123", b"456", b"789"]

    def read(n: int, buf: memoryview) -> int:
        data = records.pop(0)[:n]
        buf[: len(data)] = data
        return len(data)

    conn = Conn(ours, ("127.0.0.1", 80), read)
    status, headers, version = read_head(conn, reused=False)
    framing, length, reusable = frame("GET", status, headers, version)
    released: list[Conn] = []
    body = ResponseBody(
        released.append, conn, read_timeout=5.0, status=status, headers=headers,
        framing=framing, length=length, reusable=reusable, source="test",
    )  # fmt: skip
    buf = memoryview(bytearray(64))
    assert body.readinto(buf) == 10 and bytes(buf[:10]) == b"0123456789"
    assert body.readinto(buf) == 0
    body.close()
    assert released == [conn]
    ours.close()
    theirs.close()


def test_bytes_read_before_a_reset_are_handed_out_and_the_error_comes_next() -> None:
    """A connection reset after part of a large buffer came in: `readinto` returns those
    bytes (the engine writes them, so a retry starts after them), and the next call raises
    the reset as a TransportError; nothing is read twice or lost."""
    from objget._exceptions import TransportError

    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    chunks: list[bytes | OSError] = [b"x" * 30, b"y" * 20, ConnectionResetError(104, "reset")]

    def read(n: int, buf: memoryview) -> int:
        item = chunks.pop(0)
        if isinstance(item, OSError):
            raise item
        buf[: len(item)] = item
        return len(item)

    conn = Conn(ours, ("127.0.0.1", 80), read)
    status, headers, version = read_head(conn, reused=False)
    framing, length, reusable = frame("GET", status, headers, version)
    body = ResponseBody(
        lambda c: None, conn, read_timeout=5.0, status=status, headers=headers,
        framing=framing, length=length, reusable=reusable, source="test",
    )  # fmt: skip
    buf = memoryview(bytearray(100))
    assert body.readinto(buf) == 50 and bytes(buf[:50]) == b"x" * 30 + b"y" * 20
    try:
        body.readinto(buf)
    except TransportError:
        pass
    else:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError("the reset was not raised")
    assert chunks == []
    ours.close()
    theirs.close()


def test_doctests_run() -> None:
    import doctest

    from objget.backends import _answer, _target

    for module in (_answer, _target):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
