"""TLS details of the transport: a failed handshake in words (unknown CA, self-signed, expired,
wrong host name), and the HTTPS pool used when verification is switched off.

The reason comes from the `ssl.SSLCertVerificationError` behind urllib3's error
(`verify_code` is OpenSSL's X509_V_ERR_* number), not from parsing messages.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import urllib3

__all__ = ["UnverifiedHTTPSPool", "tls_reason"]


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


def _find_verify_error(exc: BaseException) -> tuple[int, str] | None:
    """(verify_code, verify_message) of the SSLCertVerificationError behind `exc`."""
    seen: list[BaseException] = [exc]
    for e in seen:
        code = getattr(e, "verify_code", None)  # absent when urllib3 matched the host itself
        if isinstance(e, ssl.SSLCertVerificationError) and isinstance(code, int):
            return code, str(getattr(e, "verify_message", "")).strip()
        if len(seen) < 8:
            nested = [a for a in e.args if isinstance(a, BaseException)]
            seen.extend(n for n in (*nested, e.__cause__, e.__context__) if n is not None)
    return None
