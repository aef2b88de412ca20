"""OpenSSL's read-ahead and the TLS 1.3 suite order on objget's client contexts
(`backends/_openssl.tune`), and its guards: when one says no, the context is left as Python
made it."""

from __future__ import annotations

import fcntl
import socket
import ssl
import termios
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from objget.backends import _openssl
from objget.backends._tls import client_context

from .._servers.nginx import make_certificates
from .test_tls_ciphers import handshake

RECORDS = 4
RECORD = b"r" * 1000


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("openssl-tune"))


def _tls13_server(cert: Path, key: Path, *, own_order: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if not own_order:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def queued_after_one_read(client: ssl.SSLContext, cert: Path, key: Path) -> int:
    """Bytes still in the kernel's receive queue after the client read one of the RECORDS
    TLS records that all arrived before it read."""
    a, b = socket.socketpair()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(cert), str(key))
    sent = threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(b, server_side=True) as tls:
                tls.recv(1)  # the client's go, after its handshake (and the tickets) are done
                for _ in range(RECORDS):
                    tls.sendall(RECORD)  # one record each
                sent.set()
                tls.recv(1)  # until the client hangs up
        except (OSError, ssl.SSLError) as exc:
            failed.append(exc)
            sent.set()

    a.settimeout(10)
    b.settimeout(10)
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(a, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"g")
            assert sent.wait(10)
            assert not failed
            assert tls.recv(len(RECORD)) == RECORD
            queued = bytearray(4)
            fcntl.ioctl(tls.fileno(), termios.FIONREAD, queued)
            return int.from_bytes(queued, "little")
    finally:
        b.close()  # ends the server's last recv
        thread.join(10)


def test_read_ahead_takes_what_arrived_in_one_read(certs):
    ca, cert, key = certs
    ctx = client_context(verify=True, ca_bundle=str(ca))
    assert queued_after_one_read(ctx, cert, key) == 0
    # Python's own context reads one record at a time: the three others wait in the kernel
    plain = ssl.create_default_context(cafile=str(ca))
    assert queued_after_one_read(plain, cert, key) > 2 * len(RECORD)


def test_tls13_server_that_lets_the_client_choose_gets_aes128_gcm(certs):
    ca, cert, key = certs
    client = client_context(verify=True, ca_bundle=str(ca))
    cipher, protocol = handshake(client, _tls13_server(cert, key, own_order=False))
    assert (cipher, protocol) == ("TLS_AES_128_GCM_SHA256", "TLSv1.3")
    tls13 = [c["name"] for c in client.get_ciphers() if c["protocol"] == "TLSv1.3"]
    default = [c["name"] for c in ssl.create_default_context().get_ciphers()]
    assert sorted(tls13) == sorted(n for n in default if n.startswith("TLS_"))


def test_tls13_server_with_its_own_order_still_decides(certs):
    ca, cert, key = certs
    client = client_context(verify=True, ca_bundle=str(ca))
    cipher, _ = handshake(client, _tls13_server(cert, key, own_order=True))
    assert cipher == "TLS_AES_256_GCM_SHA384"  # Python's server order


def test_unknown_layout_changes_nothing(certs, monkeypatch):
    ca, cert, key = certs
    monkeypatch.setattr(_openssl, "_layout_known", lambda: False)
    _openssl._libssl.cache_clear()
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
        before = [c["name"] for c in ctx.get_ciphers()]
        assert _openssl.tune(ctx) is False
        assert [c["name"] for c in ctx.get_ciphers()] == before
        assert queued_after_one_read(ctx, cert, key) > 2 * len(RECORD)
    finally:
        _openssl._libssl.cache_clear()


def test_pointer_that_does_not_match_is_not_used(monkeypatch):
    lib = _openssl._libssl()
    assert lib is not None  # CPython 3.10-3.14 on Linux, OpenSSL through _ssl: what CI runs
    ctx = ssl.create_default_context()
    wrong = SimpleNamespace(SSL_CTX_get_options=lambda ptr: int(ctx.options) ^ ssl.OP_NO_TICKET)
    assert _openssl._ctx_pointer(ctx, wrong) is None
    assert _openssl._ctx_pointer(ctx, lib) is not None


def test_suite_order_not_seen_through_python_is_put_back():
    ctx = ssl.create_default_context()
    before = [c["name"] for c in ctx.get_ciphers()]
    calls: list[bytes] = []
    fake = SimpleNamespace(SSL_CTX_set_ciphersuites=lambda ptr, s: calls.append(s) or 1)
    assert _openssl._order_tls13(ctx, fake, 1) is False  # set "succeeded", nothing changed
    assert calls[-1] == ":".join(n for n in before if n.startswith("TLS_")).encode()
    assert [c["name"] for c in ctx.get_ciphers()] == before
