"""Exact-byte scenarios over real TLS (pytest-httpserver with an ssl context): the HTTPS body
read that takes TLS records straight from OpenSSL (`Conn.tls_read`) must keep every fault
behaviour of the plain path — resets, truncation without close_notify, extra bytes, tiny
bodies buffered with the headers."""

from __future__ import annotations

import random
import ssl
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

import objget
from objget.backends import _tls

from ._ranged_app import RangedObject
from ._tls import make_ca, sign

MiB = 1024 * 1024


class StallingObject(RangedObject):
    """Adds "stall:N": N bytes of the range, then nothing for STALL seconds, then a close."""

    STALL = 3.0

    def _send(self, request, body, status, headers, action):
        if not action.startswith("stall:"):
            return super()._send(request, body, status, headers, action)
        cut = int(action.split(":")[1])

        def gen():
            yield body[:cut]
            time.sleep(self.STALL)

        resp = Response(gen(), status=status, headers=headers, direct_passthrough=True)
        resp.headers["Content-Length"] = str(len(body))
        return resp


def payload(size: int, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("exact-pki")
    ca = make_ca(base / "ca")
    return ca, sign(ca, base / "server", "server")


@pytest.fixture
def tls_server(tls_files):
    ca, cert = tls_files
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=ctx, threaded=True)
    server.start()
    try:
        yield server, ca
    finally:
        server.clear()
        server.stop()


def serve(server, obj, path="/obj.bin"):
    server.expect_request(path).respond_with_handler(obj)
    url = server.url_for(path)
    assert url.startswith("https://127.0.0.1:")
    return url


def download(url, dest, ca, **cfg):
    cfg.setdefault("retry", objget.RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.05))
    cfg.setdefault("part_size", MiB)
    cfg.setdefault("max_workers", 1)
    cfg.setdefault("timeouts", objget.Timeouts(connect=5, read=10))
    config = objget.DownloadConfig(ca_bundle=str(ca.cert), **cfg)
    return objget.download(url, str(dest), config=config)


def test_the_direct_reader_is_used_for_https_bodies(tls_server, tmp_path, monkeypatch):
    server, ca = tls_server
    data = payload(3 * MiB)
    made: list[object] = []
    original = _tls.wrap

    def spy(*args, **kwargs):
        tls, read = original(*args, **kwargs)
        made.append(read)
        return tls, read

    monkeypatch.setattr(_tls, "wrap", spy)
    download(serve(server, RangedObject(data)), tmp_path / "out", ca)
    assert (tmp_path / "out").read_bytes() == data
    assert made and all(r is not None for r in made)


@pytest.mark.parametrize("size", [1, 100, 8191, 8192, 70_000, 64 * 1024 * 3 + 5])
def test_small_bodies_and_small_parts(tls_server, tmp_path, size):
    """Bodies smaller than what http.client buffers with the headers, and parts of 64 KiB."""
    server, ca = tls_server
    data = payload(size, seed=size)
    download(serve(server, RangedObject(data)), tmp_path / "out", ca, part_size=64 * 1024)
    assert (tmp_path / "out").read_bytes() == data


def test_reset_mid_part_resumes_from_the_last_byte(tls_server, tmp_path):
    server, ca = tls_server
    data = payload(3 * MiB)
    obj = RangedObject(data, script=["reset:300000"])
    res = download(serve(server, obj), tmp_path / "out", ca)
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 1
    ranges = [r for m, r, _ in obj.log if m == "GET"]
    resumed_from = int(ranges[1].split("=")[1].split("-")[0])
    assert 0 < resumed_from <= 300000


def test_close_without_close_notify_is_a_truncated_body(tls_server, tmp_path):
    server, ca = tls_server
    data = payload(2 * MiB)
    obj = RangedObject(data, script=["short:500000"])
    res = download(serve(server, obj), tmp_path / "out", ca)
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 1


def test_bytes_beyond_content_length_are_never_written(tls_server, tmp_path):
    server, ca = tls_server
    data = payload(2 * MiB)
    obj = RangedObject(data, script=["extra"])
    download(serve(server, obj), tmp_path / "out", ca)
    assert (tmp_path / "out").read_bytes() == data


def test_stall_is_detected_over_tls(tls_server, tmp_path):
    server, ca = tls_server
    data = payload(MiB)
    obj = StallingObject(data, script=["stall:200000"])
    res = download(serve(server, obj), tmp_path / "out", ca, timeouts=objget.Timeouts(read=1))
    assert (tmp_path / "out").read_bytes() == data
    assert res.retries == 1


def test_abort_breaks_a_blocked_tls_read_at_once(tls_server):
    """The abort path over TLS (Ctrl-C, a stalled stream given up): another thread shuts the
    body's socket down and the blocked read ends at once as a TransportError, never as
    plaintext read from under the TLS layer."""
    import threading

    from objget.backends import Transport

    server, ca = tls_server
    data = payload(MiB)
    obj = StallingObject(data, script=["stall:100000"])
    url = serve(server, obj)
    config = objget.DownloadConfig(ca_bundle=str(ca.cert), timeouts=objget.Timeouts(read=10))
    transport = Transport(config)
    try:
        body = transport.request("GET", url, headers={}, source="s")
        buf = memoryview(bytearray(MiB))
        got = body.readinto(buf[:50000])  # what came before the stall
        assert got > 0
        timer = threading.Timer(0.3, body.abort)
        timer.start()
        start = time.monotonic()
        with pytest.raises(objget.TransportError):
            while body.readinto(buf):
                pass
        assert time.monotonic() - start < 2.0  # the server stalls 3 s, the timeout is 10 s
        timer.join(5)
        body.close()
    finally:
        transport.close()
