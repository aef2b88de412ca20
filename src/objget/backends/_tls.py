"""TLS details of the transport: the body reader that takes TLS records straight from OpenSSL,
a failed handshake in words (unknown CA, self-signed, expired, wrong host name), and the HTTPS
pool used when verification is switched off.

The reason comes from the `ssl.SSLCertVerificationError` behind urllib3's error
(`verify_code` is OpenSSL's X509_V_ERR_* number), not from parsing messages.

Only a failure every connection would repeat is final (`is_verify_failure`): the certificate
chain, its dates, the host name, a CA file that cannot be loaded, or a port that does not
speak TLS (or no protocol version in common). Any other TLS failure (the peer closing or
resetting the connection during the handshake, another alert, a torn record) says nothing
about the next connection, so the transport makes it a retryable `TransportError`.
"""

from __future__ import annotations

import http.client
import io
import re
import ssl
from collections.abc import Callable
from typing import Any

import urllib3

__all__ = ["DirectTlsReader", "UnverifiedHTTPSPool", "is_verify_failure", "tls_reason"]


class DirectTlsReader:
    """Fills a buffer with TLS records of a response body straight from OpenSSL.

    Through `http.client`, every TLS record (16 KiB at most) costs three Python calls
    (`SocketIO.readinto`, `SSLSocket.recv_into`, `SSLSocket.read`) before OpenSSL's `SSL_read`;
    here it costs one loop step (measured with bench/profile_https.py, 1 GiB over TLS on
    loopback: about 0.1 s less user CPU per GiB, 11-14 % of objget's user time).
    Only for identity bodies with a Content-Length, and only where CPython's internals it uses
    (`socket.SocketIO._sock`, `ssl.SSLSocket._sslobj`) exist; else `for_response` gives None
    and `http.client` reads. `http.client`'s own byte count is kept, so the response ends
    as if it had read the body, and the connection goes back to the pool.
    """

    def __init__(self, fp: http.client.HTTPResponse, read: Callable[[int, memoryview], int]):
        self._fp = fp
        self._read = read
        self._buffered = True  # body bytes http.client may have buffered with the headers

    @classmethod
    def for_response(cls, fp: http.client.HTTPResponse | None) -> DirectTlsReader | None:
        if fp is None or fp.chunked or not fp.length or not isinstance(fp.fp, io.BufferedReader):
            return None
        # the socket the body is read from (also when `Connection: close` detached it from the
        # connection object), and CPython's _ssl object under it
        sock = getattr(fp.fp.raw, "_sock", None)
        if not isinstance(sock, ssl.SSLSocket):
            return None
        read = getattr(getattr(sock, "_sslobj", None), "read", None)
        return cls(fp, read) if callable(read) else None

    def readinto(self, buf: memoryview) -> int:
        fp = self._fp
        left = fp.length or 0
        want = min(len(buf), left)
        if want <= 0:
            fp.readinto(buf[:0])  # http.client closes its side; the connection is reusable
            return 0
        if self._buffered:
            chunk = fp.fp.read1(want)
            n = len(chunk)
            buf[:n] = chunk
            self._buffered = n == want  # a short read1 left http.client's buffer empty
        else:
            n, read = 0, self._read
            while n < want:
                try:
                    got = read(want - n, buf[n:want])
                except ssl.SSLEOFError:  # closed without close_notify, as SSLSocket.read treats it
                    got = 0
                if not got:
                    break
                n += got
        if n == 0:
            raise http.client.IncompleteRead(b"", left)
        fp.length = left - n
        if fp.length == 0:
            fp.readinto(buf[:0])
        return n


class UnverifiedHTTPSPool(urllib3.HTTPSConnectionPool):
    """An HTTPS pool for verify_tls=False that does not warn on every request."""

    def _validate_conn(self, conn: Any) -> None:
        if conn.is_closed:
            conn.connect()


_UNTRUSTED = {2, 19, 20, 21}  # X509_V_ERR_*: issuer unknown, untrusted self-signed root
_HINT = "; trust its CA with --ca-bundle PATH (or SSL_CERT_FILE) if it is a private one"


def tls_reason(exc: BaseException) -> str:
    """Why a TLS handshake failed, in words: unknown CA, self-signed, expired, wrong host..."""
    found = _find_verify_error(exc)
    if found is None:
        text = str(exc)
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
    refused (OpenSSL's verify, urllib3's host name match), the CA certificates to verify with
    could not be loaded, or the server does not speak TLS (or no version both allow)."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError) or type(e).__name__ == "CertificateError":
            return True  # ssl.CertificateError is the same class; urllib3 has its own
        if isinstance(e, ssl.SSLError) and getattr(e, "library", None) in ("X509", "PEM"):
            return True  # the CA bundle: no certificate in it, unreadable PEM
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
        code = getattr(e, "verify_code", None)  # absent when urllib3 matched the host itself
        if isinstance(e, ssl.SSLCertVerificationError) and isinstance(code, int):
            return code, str(getattr(e, "verify_message", "")).strip()
    return None
