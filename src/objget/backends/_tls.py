"""TLS for the transport's connections: the client context (the system's trust store, a CA
bundle, or no verification), the handshake (SNI and the host name checked by OpenSSL), and a
failed handshake in words (unknown CA, self-signed, expired, wrong host name).

The reason comes from the `ssl.SSLCertVerificationError` behind the failure (`verify_code`
is OpenSSL's X509_V_ERR_* number), not from parsing messages.

Only a failure every connection would repeat is final (`is_verify_failure`): the certificate
chain, its dates, the host name, a CA file that cannot be loaded, or a port that does not
speak TLS (or no protocol version in common). Any other TLS failure (the peer closing or
resetting the connection during the handshake, another alert, a torn record) says nothing
about the next connection, so the transport makes it a retryable `TransportError`.

Cipher order: the same suites as Python's default, AES-128-GCM first (`_prefer_aes128`; for
TLS 1.3 through `_openssl.tune`, which also turns on OpenSSL's read-ahead).
Every one of them is a standard AEAD suite with forward secrecy; the order only says which the
client proposes first, and a server that picks by its own preference still picks.

Imported on the first https connection only: a plain-http download loads no `ssl`.
"""

from __future__ import annotations

import _socket
import functools
import re
import socket
import ssl

from .._log import log
from ._openssl import tune

_NO_BUNDLE = "cannot load the CA bundle"

__all__ = ["client_context", "is_tls_error", "is_verify_failure", "tls_reason", "wrap"]


@functools.cache
def _system_trust() -> ssl.SSLContext:
    """The system's CA store (honouring SSL_CERT_FILE and SSL_CERT_DIR), loaded once per
    process and only when an https connection first needs it: it costs ~45 ms, a third of a
    whole 8 MiB download from a plain-http server."""
    ctx = ssl.create_default_context()
    _finish(ctx)
    return ctx


def _finish(ctx: ssl.SSLContext) -> None:
    """What every client context gets: ALPN http/1.1, the cipher order, and OpenSSL's
    read-ahead (`_openssl.tune`, where its guards allow)."""
    ctx.set_alpn_protocols(["http/1.1"])
    _prefer_aes128(ctx)
    tuned = tune(ctx)
    log.debug("TLS context: read-ahead and TLS 1.3 order %s", "set" if tuned else "left as is")


def _prefer_aes128(ctx: ssl.SSLContext) -> None:
    """Propose the ECDHE AES-128-GCM suites of TLS 1.2 first, the others after them in their
    order.

    Python's default list starts with AES-256-GCM, which OpenSSL sorts by key length. Both are
    AEAD suites with ECDHE; 128-bit AES has 10 rounds against 14, so each side of a bulk
    transfer spends less CPU per byte (`openssl speed -evp` on 16 KiB records here: 4.45 GB/s
    against 4.18, about 16 ms less per GiB on each side; over TLS on loopback client and
    server share the cores, so both count). It is what browsers and Mozilla's recommended
    server settings propose first. TLS 1.3 suites are not in this list (`set_ciphers` leaves
    them alone)."""
    names = [c["name"] for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3"]
    first = [n for n in names if n.startswith("ECDHE-") and "-AES128-GCM-" in n]
    if first and names[: len(first)] != first:
        ctx.set_ciphers(":".join(first + [n for n in names if n not in first]))


def client_context(*, verify: bool, ca_bundle: str | None) -> ssl.SSLContext:
    """The context for https connections: verified against the system store, or against
    `ca_bundle` only, or (`verify` False) not verified at all."""
    if verify and not ca_bundle:
        return _system_trust()
    if verify:
        try:
            ctx = ssl.create_default_context(cafile=ca_bundle)
        except ssl.SSLError:
            raise
        except OSError as exc:  # no such file, a directory: as final as a bad certificate
            raise ssl.SSLError(1, f"{_NO_BUNDLE}: {exc.strerror or exc}") from exc
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _finish(ctx)
    return ctx


def wrap(
    sock: _socket.socket, ctx: ssl.SSLContext, host: str, *, read_timeout: float
) -> tuple[ssl.SSLSocket, object]:
    """The TLS handshake on `sock` (under its current timeout, the connect timeout), SNI and
    host name check for `host`; the socket then times out reads after `read_timeout`. Also
    returns OpenSSL's read for bodies (None where CPython has no `_sslobj`). The name goes in
    as bytes when ASCII (always, from `_target.origin`): ssl encodes a str with the idna codec,
    a module load that is most of the work for a name already ASCII."""
    name = host.rstrip(".")
    # the pool's sockets are `_socket`'s (`_conn`); ssl wraps `socket.py`'s, which ssl
    # imports anyway: the descriptor moves to one (as ssl moves it on to its own)
    timeout = sock.gettimeout()
    plain = socket.socket(sock.family, sock.type, sock.proto, sock.detach())
    try:
        plain.settimeout(timeout)
        server_hostname = name.encode("ascii") if name.isascii() else name
        tls = ctx.wrap_socket(plain, server_hostname=server_hostname)
    except BaseException:
        plain.close()  # nothing when ssl took the descriptor (it closes its own on failure)
        raise
    tls.settimeout(read_timeout)
    sslobj = getattr(tls, "_sslobj", None)
    read = getattr(sslobj, "read", None)
    return tls, read if callable(read) else None


def is_tls_error(exc: BaseException) -> bool:
    """Whether a failure came from TLS (the handshake, a record, the CA bundle)."""
    return any(isinstance(e, ssl.SSLError) for e in _chain(exc))


_UNTRUSTED = {2, 19, 20, 21}  # X509_V_ERR_*: issuer unknown, untrusted self-signed root
_HINT = "; trust its CA with --ca-bundle PATH (or SSL_CERT_FILE) if it is a private one"


def tls_reason(exc: BaseException) -> str:
    """Why a TLS handshake failed, in words: unknown CA, self-signed, expired, wrong host..."""
    found = _find_verify_error(exc)
    if found is None:
        text = str(exc)
        if text.startswith(_NO_BUNDLE):
            return text
        if "doesn't match" in text or "hostname" in text.lower():
            return "the certificate is not valid for this host name"
        m = re.search(r"\[SSL: ([A-Z_]+)\]", text)
        detail = m.group(1).lower().replace("_", " ") if m else exc.__class__.__name__
        return f"TLS handshake failed ({detail})"
    code, message = found
    if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        return f"the certificate is not valid for this host name ({message})"
    if code == 10:
        return "the certificate has expired"
    if code == 9:
        return "the certificate is not valid yet (check this machine's clock)"
    if code == 18:
        return f"certificate verify failed: self-signed certificate, not trusted{_HINT}"
    if code in _UNTRUSTED:
        return f"certificate verify failed: unknown CA ({message}){_HINT}"
    return f"certificate verify failed ({message})"


def is_verify_failure(exc: BaseException) -> bool:
    """Whether a TLS failure is final, one every retry would repeat: the certificate was
    refused (OpenSSL's verify or host name match), the CA certificates to verify with
    could not be loaded, or the server does not speak TLS (or no version both allow)."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError) or type(e).__name__ == "CertificateError":
            return True  # ssl.CertificateError is the same class
        if isinstance(e, ssl.SSLError) and getattr(e, "library", None) in ("X509", "PEM"):
            return True  # the CA bundle: no certificate in it, unreadable PEM
        if isinstance(e, ssl.SSLError) and str(e).startswith(_NO_BUNDLE):
            return True
        if isinstance(e, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        if isinstance(e, ssl.SSLError) and getattr(e, "reason", None) in _NO_TLS_HERE:
            return True
    return False


# The port does not speak TLS, or not a version both sides allow: every connection would
# fail the same way (measured: retried, an https:// URL to a plain-http port took 40 s to fail).
_NO_TLS_HERE = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "VERSION_TOO_LOW",
        "VERSION_TOO_HIGH",
    }
)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the exceptions in its args, its cause and context, transitively (at most 8)."""
    seen: list[BaseException] = [exc]
    for e in seen:
        if len(seen) < 8:
            nested = [a for a in e.args if isinstance(a, BaseException)]
            seen.extend(
                n for n in (*nested, e.__cause__, e.__context__) if n is not None and n not in seen
            )
    return seen


def _find_verify_error(exc: BaseException) -> tuple[int, str] | None:
    """(verify_code, verify_message) of the SSLCertVerificationError behind `exc`."""
    for e in _chain(exc):
        code = getattr(e, "verify_code", None)
        if isinstance(e, ssl.SSLCertVerificationError) and isinstance(code, int):
            return code, str(getattr(e, "verify_message", "")).strip()
    return None
