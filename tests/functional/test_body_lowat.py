"""A large read of a plain-TCP body wakes once, when all its bytes are there (SO_RCVLOWAT set
to the read's size), not at every burst of segments: each wake-up costs the sender too (on
loopback the server's CPU). The connection goes back to the pool with the kernel's 1, so the
next answer's head is read at its first bytes."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from tests.functional.test_wire import Script, ok, transport

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux socket option")

MiB = 1024 * 1024


def trickle(*replies: bytes):
    """Answer each request with its reply in 64 KiB pieces, 1 ms apart."""

    def handler(conn: socket.socket, s: Script) -> None:
        for reply in replies:
            if s.read_request(conn) is None:
                return
            for i in range(0, len(reply), 65536):
                conn.sendall(reply[i : i + 65536])
                time.sleep(0.001)
        s.read_request(conn)

    return handler


def lowat(body: object) -> int:
    sock = body._conn.sock  # type: ignore[attr-defined]
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


def test_a_large_read_waits_for_all_its_bytes_and_the_kept_connection_does_not():
    first, second = bytes(range(256)) * (9 * 4096 + 7), b"next"  # 2.25 MiB + 1792 bytes
    with Script(trickle(ok(first), ok(second))) as s:
        t = transport(read=5.0)
        try:
            body = t.request("GET", f"{s.url}/b/k", headers={}, source="src")
            buf = memoryview(bytearray(MiB))
            got, seen = bytearray(), set()
            t0 = time.monotonic()
            while n := body.readinto(buf):
                got += buf[:n]
                if body._conn is not None:  # type: ignore[attr-defined]
                    seen.add(lowat(body))
            body.close()
            assert bytes(got) == first
            assert MiB in seen  # a read from the socket woke once the whole read was there
            assert time.monotonic() - t0 < 2.0  # the short last read did not wait for 1 MiB
            again = t.request("GET", f"{s.url}/b/k2", headers={}, source="src")
            assert lowat(again) == 1  # the same connection, back at the kernel's default
            assert again.readinto(memoryview(bytearray(64))) == len(second)
            again.close()
        finally:
            t.close()
    assert s.accepted == 1
