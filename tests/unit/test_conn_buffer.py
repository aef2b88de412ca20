"""A connection's read buffer costs what its reads touch (issue 16: peak RSS flat as streams
are added): an anonymous mapping, not a zero-filled bytearray (256 KiB resident per stream on
main), whose pages beyond 16 KiB go back once a large body streams past it; a head larger than
that still fits afterwards."""

from __future__ import annotations

import ctypes
import mmap
import socket
import threading

from objget.backends._answer import Conn, frame, read_head
from objget.backends._body import ResponseBody

KiB = 1024
BODY = bytes(range(256)) * 4096  # 1 MiB


def _resident(view: memoryview) -> int:
    """Bytes of `view` resident now (mincore: one byte per page, bit 0 = resident)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    addr = ctypes.addressof(ctypes.c_char.from_buffer(view))
    start = addr - addr % mmap.PAGESIZE  # (a bytearray's is not page-aligned)
    length = addr + len(view) - start
    vec = (ctypes.c_ubyte * -(-length // mmap.PAGESIZE))()
    assert libc.mincore(start, length, vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec) * mmap.PAGESIZE


def _read_answer(conn: Conn, *, reused: bool) -> bytes:
    status, headers, version = read_head(conn, reused=reused)
    framing, length, reusable = frame("GET", status, headers, version)
    body = ResponseBody(
        lambda _c: None, conn, read_timeout=5.0, status=status, headers=headers,
        framing=framing, length=length, reusable=reusable, source="test",
    )  # fmt: skip
    out = bytearray()
    buf = memoryview(bytearray(1024 * KiB))
    while n := body.readinto(buf):
        out += buf[:n]
    body.close()
    return bytes(out)


def test_a_large_body_leaves_16_kib_of_the_connection_buffer_resident() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    conn = Conn(ours, ("127.0.0.1", 80))
    try:
        assert _resident(conn.mv) == 0  # nothing read yet: nothing resident
        big_head = "".join(f"x-meta-{i}: {'v' * 100}\r\n" for i in range(200))  # ~22 KiB
        answers = [
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY,
            f"HTTP/1.1 200 OK\r\n{big_head}Content-Length: 5\r\n\r\n".encode() + b"hello",
        ]
        sent = threading.Event()

        def send() -> None:
            theirs.sendall(answers[0])
            sent.wait(10)
            theirs.sendall(answers[1])

        sender = threading.Thread(target=send)
        sender.start()
        try:
            assert _read_answer(conn, reused=False) == BODY
            assert conn.room == 16 * KiB
            assert _resident(conn.mv) <= 16 * KiB
            sent.set()
            assert _read_answer(conn, reused=True) == b"hello"  # a 22 KiB head still fits
        finally:
            sent.set()
            sender.join(10)
    finally:
        conn.close()
        theirs.close()
