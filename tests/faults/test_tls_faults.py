"""Transient TLS failures: a front that breaks the first handshakes (the peer closes or resets
the connection after the ClientHello) must not end the download; only a refused certificate
is final (see test_security.py for that side).
"""

from __future__ import annotations

import json

import pytest

from ._harness import MiB, run, same
from ._tlsfront import HandshakeBreaker

ROW = "net: TLS handshakes broken (close, reset), then retried"


@pytest.mark.parametrize("how", ["close", "reset"])
def test_broken_handshakes_are_retried(how, nginx_factory, make_object, site_root, tmp_path,
                                       summary):  # fmt: skip
    source = make_object("tls-front.bin", 12 * MiB)
    web = nginx_factory(site_root, tls=True)
    assert web.ca_path is not None
    dest = tmp_path / "out.bin"
    with HandshakeBreaker(web.port, breaks=3, how=how) as front:
        done = run(
            [f"https://127.0.0.1:{front.port}/tls-front.bin", dest, "--ca-bundle", web.ca_path,
             "-j", "4", "--part-size", "1M", "--json"],
        )  # fmt: skip
        broken, relayed = front.broken, front.relayed
    ok = done.rc == 0 and same(dest, source)
    summary.trial(ROW, correct=ok)
    assert ok, (done.rc, done.err[-2000:])
    assert broken == 3 and relayed >= 1, (broken, relayed)
    assert json.loads(done.out)["size"] == 12 * MiB
