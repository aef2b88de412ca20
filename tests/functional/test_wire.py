"""objget's HTTP/1.1 client (`backends._transport` over `_conn`, `_answer`, `_body`) against
scripted loopback servers: keep-alive reuse, framing (length, chunked, to the end), stale and
spoiled connections, stalls, redirects, IPv6 literals, and request targets byte-identical to
what urllib3 sent before objget had its own client (urllib3 as the oracle: botocore, in the
test extras, installs it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from objget import DownloadConfig, RemoteError, Timeouts, TransportError
from objget.backends import Transport
from objget.backends._target import origin, target

Handler = Callable[[socket.socket, "Script"], None]


class Script:
    """A loopback server: the n-th accepted connection is served by `handlers[n]` (the last
    one for any further connection); every request head read is recorded."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = handlers
        self.requests: list[str] = []
        self.accepted = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept)

    def __enter__(self) -> Script:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepter.join(5)
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            handler = self.handlers[min(self.accepted, len(self.handlers) - 1)]
            self.accepted += 1
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, handler))
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, handler: Handler) -> None:
        try:
            handler(conn, self)
        except OSError:
            pass

    def read_request(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.requests.append(head)
        return head


def answer_each(*replies: bytes) -> Handler:
    """Answer one request with each reply in turn, then stop reading (keep the socket)."""

    def handler(conn: socket.socket, s: Script) -> None:
        for reply in replies:
            if s.read_request(conn) is None:
                return
            conn.sendall(reply)
        s.read_request(conn)

    return handler


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


def transport(read: float = 5.0) -> Transport:
    cfg = DownloadConfig(timeouts=Timeouts(connect=2.0, read=read))
    return Transport(cfg)


def fetch(t: Transport, url: str, method: str = "GET", **headers: str) -> tuple[int, bytes]:
    body = t.request(method, url, headers=headers, source="src", redirect=False)
    out = bytearray()
    buf = memoryview(bytearray(7))  # small reads: every path through readinto
    try:
        while n := body.readinto(buf):
            out += buf[:n]
    finally:
        body.close()
    return body.status, bytes(out)


def test_requests_share_one_kept_alive_connection_and_say_what_http_client_said():
    bodies = [bytes([i]) * (100 * i) for i in range(1, 5)]
    with Script(answer_each(*(ok(b) for b in bodies))) as s:
        t = transport()
        try:
            got = [fetch(t, f"{s.url}/b/k{i}?versionId=v", Range="bytes=0-9") for i in range(4)]
        finally:
            t.close()
    assert got == [(200, b) for b in bodies]
    assert s.accepted == 1
    first = s.requests[0].split("\r\n")
    assert first == [
        "GET /b/k0?versionId=v HTTP/1.1",
        f"Host: 127.0.0.1:{s.port}",
        "Accept-Encoding: identity",
        "User-Agent: objget",
        "Range: bytes=0-9",
    ]


def test_chunked_error_body_is_read_whole_and_the_connection_kept():
    xml = b"<Error><Code>AccessDenied</Code></Error>"
    chunked = (
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x;ext=1\r\n" % 10 + xml[:10] + b"\r\n"
        + b"%X\r\n" % (len(xml) - 10) + xml[10:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )  # fmt: skip
    with Script(answer_each(chunked, ok(b"after"))) as s:
        t = transport()
        try:
            body = t.request("GET", f"{s.url}/b/k", headers={}, source="src")
            assert body.status == 403
            assert body.read_error_body(65536) == xml
            assert fetch(t, f"{s.url}/b/k2") == (200, b"after")
        finally:
            t.close()
    assert s.accepted == 1


def test_head_has_no_body_but_tells_the_length():
    head = b'HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nETag: "e"\r\n\r\n'
    with Script(answer_each(head, ok(b"x"))) as s:
        t = transport()
        try:
            body = t.request("HEAD", f"{s.url}/b/k", headers={}, source="src")
            body.close()
            assert (body.status, body.content_length, body.headers["etag"]) == (200, 123456, '"e"')
            assert fetch(t, f"{s.url}/b/k") == (200, b"x")
        finally:
            t.close()
    assert s.accepted == 1


def test_interim_answers_are_skipped_and_folded_headers_joined():
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok"
    )
    with Script(answer_each(reply)) as s:
        t = transport()
        try:
            body = t.request("GET", f"{s.url}/k", headers={}, source="src")
            assert body.headers["x-a"] == "one two"
            assert body.read_error_body() == b"ok"
        finally:
            t.close()


def test_headers_behave_as_urllib3_parsed_them():
    """Same lookups, same merging of repeated names, same order as urllib3's HTTPHeaderDict."""
    from urllib3 import HTTPHeaderDict

    lines = [("ETag", '"a"'), ("x-amz-meta-A", "1"), ("X-Amz-Meta-a", "2"), ("Content-Length", "3")]
    raw = "".join(f"{k}: {v}\r\n" for k, v in lines).encode()
    with Script(answer_each(b"HTTP/1.1 200 OK\r\n" + raw + b"\r\nabc")) as s:
        t = transport()
        try:
            body = t.request("GET", f"{s.url}/k", headers={}, source="src")
            got = body.headers
            body.read_error_body()
        finally:
            t.close()
    want = HTTPHeaderDict()
    for k, v in lines:
        want.add(k, v)
    assert list(got.items()) == list(want.itermerged())
    assert got["X-AMZ-META-A"] == "1, 2" and got.get("etag") == '"a"' and "content-length" in got
    assert got.getlist("x-amz-meta-a") == ["1", "2"] and len(got) == 3


def test_truncated_body_is_a_transport_error_and_the_connection_is_dropped():
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40

    def close_after(conn: socket.socket, s: Script) -> None:
        s.read_request(conn)
        conn.sendall(short)
        conn.shutdown(socket.SHUT_WR)

    with Script(close_after, answer_each(ok(b"fine"))) as s:
        t = transport()
        try:
            with pytest.raises(TransportError, match="body truncated"):
                fetch(t, f"{s.url}/k")
            assert fetch(t, f"{s.url}/k") == (200, b"fine")
        finally:
            t.close()
    assert s.accepted == 2


@pytest.mark.parametrize("trust_idle", [0.0, 60.0], ids=["looked-at", "trusted"])
@pytest.mark.parametrize("when", ["after-answer", "after-request"])
def test_a_kept_alive_connection_the_server_closed_is_replaced(when, trust_idle, monkeypatch):
    """Closed while idle (seen before reuse when it was idle long enough to be looked at) or
    on the next request (no byte of answer): the request goes out once more on a new
    connection."""
    monkeypatch.setattr("objget.backends._conn.TRUST_IDLE", trust_idle)

    def one_then_close(conn: socket.socket, s: Script) -> None:
        s.read_request(conn)
        conn.sendall(ok(b"first"))
        if when == "after-request":
            s.read_request(conn)
        conn.close()

    with Script(one_then_close, answer_each(ok(b"second"))) as s:
        t = transport()
        try:
            assert fetch(t, f"{s.url}/k") == (200, b"first")
            assert fetch(t, f"{s.url}/k") == (200, b"second")
        finally:
            t.close()
    assert s.accepted == 2


@pytest.mark.parametrize(
    "reply",
    [
        ok(b"abc", "Connection: close"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA",
    ],
    ids=["connection-close", "http-1.0", "extra-bytes"],
)
def test_connections_that_cannot_be_trusted_again_are_not_reused(reply):
    with Script(answer_each(reply, ok(b"x")), answer_each(ok(b"fresh"))) as s:
        t = transport()
        try:
            assert fetch(t, f"{s.url}/k") == (200, b"abc")
            assert fetch(t, f"{s.url}/k") == (200, b"fresh")
        finally:
            t.close()
    assert s.accepted == 2


def test_body_without_length_is_read_to_the_end_of_the_connection():
    def to_eof(conn: socket.socket, s: Script) -> None:
        s.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        conn.close()

    with Script(to_eof) as s:
        t = transport()
        try:
            assert fetch(t, f"{s.url}/k") == (200, b"all of it")
        finally:
            t.close()


def test_a_stalled_answer_times_out_as_a_transport_error():
    def stall(conn: socket.socket, s: Script) -> None:
        s.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12")
        s.read_request(conn)  # until the client gives up

    with Script(stall) as s:
        t = transport(read=0.3)
        try:
            with pytest.raises(TransportError, match="stalled"):
                fetch(t, f"{s.url}/k")
        finally:
            t.close()


def test_garbage_instead_of_an_answer_is_a_transport_error():
    with Script(answer_each(b"SSH-2.0-OpenSSH\r\n\r\n")) as s:
        t = transport()
        try:
            with pytest.raises(TransportError, match="connection to 127.0.0.1 failed"):
                fetch(t, f"{s.url}/k")
        finally:
            t.close()


def test_refused_connection_is_a_transport_error():
    port = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/k"
    port.close()
    t = transport()
    try:
        with pytest.raises(TransportError, match="cannot connect"):
            fetch(t, url)
    finally:
        t.close()


def test_redirects_are_followed_on_the_kept_alive_connection():
    moved = b"HTTP/1.1 302 Found\r\nLocation: /there\r\nContent-Length: 0\r\n\r\n"

    def serve(conn: socket.socket, s: Script) -> None:
        while (head := s.read_request(conn)) is not None:
            conn.sendall(ok(b"arrived") if head.startswith("GET /there") else moved)

    with Script(serve) as s:
        t = transport()
        try:
            body = t.request("GET", f"{s.url}/here", headers={}, source="src", redirect=False)
            assert body.status == 302
            body.close()
            body = t.request("GET", f"{s.url}/here", headers={}, source="src", redirect=True)
            assert (body.status, body.read_error_body()) == (200, b"arrived")
        finally:
            t.close()
    assert s.accepted == 1


def test_a_redirect_to_another_host_drops_credentials_and_303_becomes_get():
    seen: list[str] = []

    def there(conn: socket.socket, s: Script) -> None:
        while (head := s.read_request(conn)) is not None:
            seen.append(head)
            conn.sendall(ok(b"moved here"))

    with Script(there) as other:
        moved = (
            f"HTTP/1.1 303 See Other\r\nLocation: http://localhost:{other.port}/x\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        with Script(answer_each(moved)) as s:
            t = transport()
            try:
                body = t.request(
                    "HEAD", f"{s.url}/k", source="src",
                    headers={"Authorization": "secret", "Cookie": "c", "X-Keep": "1"},
                )  # fmt: skip
                assert body.status == 200
                body.read_error_body()
            finally:
                t.close()
    lines = seen[0].split("\r\n")
    assert lines[0] == "GET /x HTTP/1.1"
    assert "X-Keep: 1" in lines
    assert not [x for x in lines if x.startswith(("Authorization", "Cookie"))]


def test_more_than_ten_redirects_is_a_final_error():
    def loop(conn: socket.socket, s: Script) -> None:
        while s.read_request(conn) is not None:
            conn.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")

    with Script(loop) as s:
        t = transport()
        try:
            with pytest.raises(RemoteError, match="too many redirects"):
                t.request("GET", f"{s.url}/k", headers={}, source="src")
        finally:
            t.close()
    assert len(s.requests) == 11  # the first request and ten redirects followed


def test_ipv6_literal_host():
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.fail("no IPv6 loopback on this machine")
    port = server.getsockname()[1]
    got: list[str] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            got.append(data.decode("latin-1"))
            conn.sendall(ok(b"six"))

    thread = threading.Thread(target=serve)
    thread.start()
    t = transport()
    try:
        assert fetch(t, f"http://[::1]:{port}/k") == (200, b"six")
    finally:
        t.close()
        thread.join(5)
        server.close()
    assert got[0].split("\r\n")[:2] == ["GET /k HTTP/1.1", f"Host: [::1]:{port}"]


def test_a_header_with_a_line_break_is_refused():
    t = transport()
    try:
        with pytest.raises(ValueError, match="invalid HTTP header"):
            t.request("GET", "http://127.0.0.1:9/k", headers={"X": "a\r\nB: c"}, source="s")
    finally:
        t.close()


_CHARS = st.sampled_from(
    list("abcXYZ019-._~!$&'()*+,;=:@/?%#[] \u00e9\"<>{}|^`") + ["%2F", "%2f", "..", ".", "%zz"]
)


@settings(max_examples=400, deadline=None)
@given(
    host=st.sampled_from(["example.com", "EXAMPLE.com", "127.0.0.1", "s3.local", "[::1]"]),
    port=st.sampled_from(["", ":80", ":9000", ":08080"]),
    rest=st.lists(_CHARS, max_size=12).map("".join),
)
def test_targets_are_the_ones_urllib3_sent(host, port, rest):
    """A followed URL as urllib3's PoolManager sent it (dot segments resolved, unsafe
    characters encoded); one a backend built as its connection pool sent it (as written)."""
    from urllib.parse import urlsplit

    from urllib3.util.url import _encode_target

    url = f"http://{host}{port}/{rest}"
    u = parse_url(url)
    where = origin(url)
    assert where.host == u.host.strip("[]")
    assert where.port == (u.port or 80)
    assert target(url, as_written=False) == u.request_uri
    parts = urlsplit(url)
    written = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    assert target(url, as_written=True) == _encode_target(written)


@pytest.mark.parametrize(
    ("url", "followed", "written"),
    [
        ("http://h/../", "/", "/../"),
        ("http://h/a/./b/../c?q=%2f", "/a/c?q=%2F", "/a/./b/../c?q=%2F"),
        ("http://h/a b?x y", "/a%20b?x%20y", "/a%20b?x%20y"),
        ("http://h/100%", "/100%25", "/100%25"),
        ("http://h?", "/?", "/"),
        ("http://h/caf\u00e9#frag", "/caf%C3%A9", "/caf%C3%A9"),
    ],
)
def test_known_targets(url, followed, written):
    assert target(url, as_written=False) == followed
    assert target(url, as_written=True) == written


def test_the_pool_keeps_at_most_pool_size_idle_connections():
    def serve(conn: socket.socket, s: Script) -> None:
        while s.read_request(conn) is not None:
            conn.sendall(ok(b"x"))

    with Script(serve) as s:
        t = Transport(DownloadConfig(timeouts=Timeouts(connect=2.0, read=5.0)), pool_size=2)
        try:
            bodies = [t.request("GET", f"{s.url}/k{i}", headers={}, source="s") for i in range(3)]
            for body in bodies:  # three at once: three connections
                assert body.read_error_body() == b"x"
            again = [t.request("GET", f"{s.url}/k{i}", headers={}, source="s") for i in range(3)]
            for body in again:  # two were kept; the third request needed a new connection
                assert body.read_error_body() == b"x"
        finally:
            t.close()
    assert s.accepted == 4


def test_abort_breaks_a_blocked_read_at_once():
    """The abort path (Ctrl-C, a stalled stream given up): another thread shuts the body's
    socket down; the read blocked in the kernel (SO_RCVTIMEO, 5 s here) ends at once."""
    import time

    def stall(conn: socket.socket, s: Script) -> None:
        s.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n12")
        s.read_request(conn)  # until the client goes away

    with Script(stall) as s:
        t = transport(read=5.0)
        try:
            body = t.request("GET", f"{s.url}/k", headers={}, source="src")
            buf = memoryview(bytearray(100))
            assert body.readinto(buf) == 2
            timer = threading.Timer(0.2, body.abort)
            timer.start()
            start = time.monotonic()
            with pytest.raises(TransportError):
                body.readinto(buf)
            assert time.monotonic() - start < 2.0
            timer.join(5)
            body.close()
        finally:
            t.close()
