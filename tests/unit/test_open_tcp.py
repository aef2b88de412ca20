"""`_conn.open_tcp`: `socket.create_connection`'s behaviour (on `_socket`'s sockets), with an
ASCII host resolved as bytes (no idna codec load), and the TLS name given as bytes for the
same reason."""

from __future__ import annotations

import _socket  # what objget's connections use (`_conn`): socket.py's wrapper calls it too
import socket
import textwrap

import pytest

from objget.backends._conn import open_tcp

from ..fresh import fresh


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: a connect is refused


def test_an_ascii_host_is_resolved_as_bytes_and_a_refused_address_is_skipped(monkeypatch):
    asked = []
    dead = _refused_port()
    with socket.create_server(("127.0.0.1", 0)) as server:
        live = server.getsockname()[1]

        def resolve(host, port, family=0, kind=0, proto=0, flags=0):
            asked.append(host)
            stream = (socket.AF_INET, socket.SOCK_STREAM, 6, "")
            return [(*stream, ("127.0.0.1", dead)), (*stream, ("127.0.0.1", live))]

        monkeypatch.setattr(_socket, "getaddrinfo", resolve)
        sock = open_tcp("Example.COM", 80, 5.0)  # `_socket`'s: no context manager
        try:
            assert sock.getpeername() == ("127.0.0.1", live)
            assert sock.gettimeout() == 5.0
        finally:
            sock.close()
    assert asked == [b"Example.COM"]


def test_every_address_refused_raises_the_last_error(monkeypatch):
    ports = [_refused_port(), _refused_port()]

    def resolve(host, port, family=0, kind=0, proto=0, flags=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in ports]

    monkeypatch.setattr(_socket, "getaddrinfo", resolve)
    with pytest.raises(ConnectionRefusedError):
        open_tcp("h", 80, 5.0)


def test_no_address_is_an_os_error(monkeypatch):
    monkeypatch.setattr(_socket, "getaddrinfo", lambda *a, **k: [])
    with pytest.raises(OSError, match="no address for h"):
        open_tcp("h", 80, 5.0)


def test_a_non_ascii_host_is_left_to_getaddrinfo(monkeypatch):
    asked = []

    def resolve(host, port, family=0, kind=0, proto=0, flags=0):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no such name")

    monkeypatch.setattr(_socket, "getaddrinfo", resolve)
    with pytest.raises(socket.gaierror):
        open_tcp("bücher.example", 80, 5.0)
    assert asked == ["bücher.example"]


def test_connecting_loads_no_idna_codec():
    code = textwrap.dedent(
        """
        import socket, sys
        from objget.backends._conn import open_tcp
        with socket.create_server(("127.0.0.1", 0)) as server:
            open_tcp("127.0.0.1", server.getsockname()[1], 5.0).close()
            open_tcp("localhost", server.getsockname()[1], 5.0).close()
        codec = ("encodings.idna", "stringprep", "unicodedata")
        print(sorted(m for m in codec if m in sys.modules))
        """
    )
    proc = fresh(code)
    assert proc.stdout.split() == ["[]"]


def test_the_tls_name_loads_no_idna_codec():
    code = textwrap.dedent(
        """
        import socket, ssl, sys
        from objget.backends._tls import wrap
        mine, theirs = socket.socketpair()
        theirs.close()  # the handshake fails at once, after the name was taken
        try:
            wrap(mine, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "example.com.", read_timeout=1)
        except OSError:
            pass
        mine.close()
        print("encodings.idna" in sys.modules)
        """
    )
    proc = fresh(code)
    assert proc.stdout.split() == ["False"]
