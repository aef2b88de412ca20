"""Which cipher suite objget's TLS client proposes first (`backends/_tls._prefer_aes128`): the
same suites as Python's default, AES-128-GCM first; a server that chooses by its own order
still gets its choice. Handshakes run in memory (two `ssl.MemoryBIO` pairs, no socket)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from objget.backends._tls import client_context

from .._servers.nginx import make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls-ciphers"))


def _tls12_names(ctx: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3"]


def handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> tuple[str, str]:
    """(cipher, protocol) the two contexts agree on, over memory BIOs."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):  # a TLS handshake takes 2-3 flights each way
        for name, obj in (("c", cli), ("s", srv)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), "the handshake did not finish"
    cipher = cli.cipher()
    assert cipher is not None
    return cipher[0], cipher[1]


def server_context(cert: Path, key: Path, *, own_order: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2 server; with `own_order`, it picks by its own list (else the client's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if own_order is None:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # as nginx's default
    else:
        ctx.set_ciphers(own_order)
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


@pytest.mark.parametrize("verify", [True, False])
def test_same_suites_aes128_gcm_first(verify, certs):
    ca = str(certs[0]) if verify else None
    ours = _tls12_names(client_context(verify=verify, ca_bundle=ca))
    default = _tls12_names(ssl.create_default_context())
    assert sorted(ours) == sorted(default)
    first = [n for n in default if n.startswith("ECDHE-") and "-AES128-GCM-" in n]
    assert first
    assert ours[: len(first)] == first
    assert ours[len(first) :] == [n for n in default if n not in first]


def test_server_that_lets_the_client_choose_gets_aes128_gcm(certs):
    ca, cert, key = certs
    cipher, protocol = handshake(client_context(verify=True, ca_bundle=str(ca)),
                                 server_context(cert, key))  # fmt: skip
    assert protocol == "TLSv1.2"
    assert cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_server_with_its_own_order_still_decides(certs):
    ca, cert, key = certs
    own = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
    cipher, _ = handshake(client_context(verify=True, ca_bundle=str(ca)),
                          server_context(cert, key, own_order=own))  # fmt: skip
    assert cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"
