"""The TLS layer (`backends/_tls.py`, `_conn.py`, `_body.py`) against a scripted TLS server whose
every record and byte the test decides: the end of a stream with and without close_notify,
a forged record, records of every size, a server that never answers the handshake."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import objget
from objget.backends import Transport

from ._tls import CertSet, make_ca, sign

BODY = bytes(range(256)) * 2048  # 512 KiB
Script = Callable[[socket.socket, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO], None]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertSet, CertSet]:
    base = tmp_path_factory.mktemp("wire-pki")
    ca = make_ca(base / "ca")
    return ca, sign(ca, base / "server", "server")


class Server:
    """One TLS connection on 127.0.0.1 at a time, served by `script` after the handshake and
    the request head (`None`: the handshake is never answered)."""

    def __init__(self, cert: CertSet, script: Script | None, *, conns: int = 1) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert.cert), str(cert.key))
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.failure: BaseException | None = None
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, args=(conns,))
        self.thread.start()

    def _serve(self, conns: int) -> None:
        for _ in range(conns):
            try:
                conn, _ = self.listener.accept()
            except OSError as exc:
                self.failure = exc
                return
            self.accepted += 1
            self._one(conn)

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            if self.script is None:
                conn.recv(65536)  # the ClientHello, never answered
                time.sleep(3)
                return
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = self.ctx.wrap_bio(incoming, outgoing, server_side=True)
            try:
                _handshake(conn, obj, incoming, outgoing)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += _read(conn, obj, incoming)
                self.script(conn, obj, incoming, outgoing)
            except (OSError, ssl.SSLError) as exc:  # the client may hang up first
                self.failure = exc

    def close(self) -> None:
        self.thread.join(15)
        self.listener.close()


def _handshake(
    conn: socket.socket, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> None:
    for _ in range(50):
        try:
            obj.do_handshake()
            conn.sendall(outgoing.read())
            return
        except ssl.SSLWantReadError:
            conn.sendall(outgoing.read())
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("the client left during the handshake") from None
            incoming.write(data)
    raise AssertionError("handshake did not finish")


def _read(conn: socket.socket, obj: ssl.SSLObject, incoming: ssl.MemoryBIO) -> bytes:
    while True:
        try:
            return obj.read(65536)
        except ssl.SSLWantReadError:
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("the client left") from None
            incoming.write(data)


def _send(conn: socket.socket, obj: ssl.SSLObject, out: ssl.MemoryBIO, *parts: bytes) -> None:
    for part in parts:
        obj.write(part)  # one TLS record per write (up to 16 KiB)
    conn.sendall(out.read())


def _close_notify(conn: socket.socket, obj: ssl.SSLObject, out: ssl.MemoryBIO) -> None:
    try:
        obj.unwrap()
    except ssl.SSLWantReadError:
        pass  # our close_notify is written; the client's is not awaited
    conn.sendall(out.read())


def _head(length: int | None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Connection: close\r\n"
    return f"HTTP/1.1 200 OK\r\n{size}\r\n".encode()


@pytest.fixture
def serve(pki: tuple[CertSet, CertSet]) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def start(script: Script | None, conns: int = 1) -> Server:
        made.append(Server(pki[1], script, conns=conns))
        return made[-1]

    yield start
    for server in made:
        server.close()


def fetch(server: Server, ca: Path, *, connect: float = 5.0, times: int = 1) -> bytes:
    """GET the body `times` times through one transport (its pool), each read into a 1 MiB
    buffer to its end; the last body."""
    config = objget.DownloadConfig(
        ca_bundle=str(ca), timeouts=objget.Timeouts(connect=connect, read=5)
    )
    transport = Transport(config)
    try:
        for _ in range(times):
            body = transport.request(
                "GET", f"https://127.0.0.1:{server.port}/x", headers={}, source="s"
            )
            out = bytearray()
            buf = memoryview(bytearray(1024 * 1024))
            while n := body.readinto(buf):
                out += buf[:n]
            body.close()
        return bytes(out)
    finally:
        transport.close()


def test_records_of_every_size_arrive_exactly(serve, pki) -> None:
    sizes = [1, 2, 3, 5, 100, 4096, 16383, 16384, 1, 7000]
    parts, at = [], 0
    while at < len(BODY):
        n = sizes[len(parts) % len(sizes)]
        parts.append(BODY[at : at + n])
        at += n
    server = serve(lambda c, o, i, out: _send(c, o, out, _head(len(BODY)), *parts))
    assert fetch(server, pki[0].cert) == BODY


def test_a_body_to_the_end_of_the_stream_ends_at_close_notify(serve, pki) -> None:
    def script(c, o, i, out):
        _send(c, o, out, _head(None), BODY)
        _close_notify(c, o, out)

    assert fetch(serve(script), pki[0].cert) == BODY


@pytest.mark.parametrize("notify", [True, False], ids=["close_notify", "ragged"])
def test_a_short_body_is_a_truncation_with_or_without_close_notify(serve, pki, notify) -> None:
    def script(c, o, i, out):
        _send(c, o, out, _head(len(BODY)), BODY[:200_000])
        if notify:
            _close_notify(c, o, out)

    with pytest.raises(objget.TransportError):
        fetch(serve(script), pki[0].cert)


def test_a_forged_record_is_an_error_never_bytes(serve, pki) -> None:
    def script(c, o, i, out):
        _send(c, o, out, _head(len(BODY)))
        o.write(BODY[:16384])
        record = bytearray(out.read())
        record[len(record) // 2] ^= 0x01  # inside the ciphertext: the GCM tag no longer fits
        c.sendall(bytes(record))
        _send(c, o, out, BODY[16384:])

    with pytest.raises(objget.TransportError):
        fetch(serve(script), pki[0].cert)


def test_a_handshake_never_answered_fails_at_the_connect_timeout(serve, pki) -> None:
    server = serve(None)
    start = time.monotonic()
    with pytest.raises(objget.TransportError):
        fetch(server, pki[0].cert, connect=0.5)
    assert time.monotonic() - start < 2.5


STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"


@pytest.mark.parametrize(
    "tail",
    [(BODY[1000:], STRAY), (BODY[1000:-100], BODY[-100:] + STRAY)],
    ids=["own-record", "in-the-last-body-record"],
)
def test_an_idle_connection_with_unread_tls_bytes_is_not_reused(
    serve, pki, monkeypatch, tail
) -> None:
    """A stray answer after the body, in a record of its own or in the body's last record,
    waits in OpenSSL (read ahead, or the rest of a record already decrypted), not in the
    kernel, where no poll of the socket sees it: the idle check must find it there, or the
    next request would take it for its answer."""
    from objget.backends import _conn

    monkeypatch.setattr(_conn, "TRUST_IDLE", 0.0)  # every reuse is checked

    def script(c, o, i, out):
        _send(c, o, out, _head(len(BODY)) + BODY[:1000], *tail)
        if i.pending == 0:  # keep the connection open until the client leaves
            c.settimeout(5)
            c.recv(1)

    server = serve(script, conns=2)
    assert fetch(server, pki[0].cert, times=2) == BODY
    assert server.accepted == 2
