"""TLS failures in words, from the verify code behind urllib3's error."""

from __future__ import annotations

import ssl

import pytest
from urllib3 import exceptions as u3

from objget.backends._tls import tls_reason


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


@pytest.mark.parametrize(
    ("code", "message", "expect", "hint"),
    [
        (20, "unable to get local issuer certificate", "unknown CA", True),
        (18, "self-signed certificate", "self-signed", True),
        (19, "self-signed certificate in certificate chain", "self-signed", True),
        (10, "certificate has expired", "expired", False),
        (9, "certificate is not yet valid", "clock", False),
        (62, "Hostname mismatch, certificate is not valid for 'x'.", "host name", False),
        (64, "IP address mismatch, certificate is not valid for '1.2.3.4'.", "host name", False),
        (26, "unsupported certificate purpose", "unsupported certificate purpose", False),
    ],
)
def test_reason_names_the_cause(code, message, expect, hint):
    wrapped = u3.SSLError(verify_error(code, message))
    reason = tls_reason(u3.MaxRetryError(None, "https://h/", wrapped).reason)
    assert expect in reason
    assert ("--ca-bundle" in reason) is hint


def test_found_through_the_cause_chain():
    outer = u3.SSLError("wrapped")
    outer.__cause__ = verify_error(10, "certificate has expired")
    assert "expired" in tls_reason(outer)


def test_handshake_failure_without_verification_detail():
    exc = u3.SSLError(
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    )
    assert tls_reason(exc) == "TLS handshake failed (wrong version number)"
    assert "host name" in tls_reason(ssl.CertificateError("hostname 'a' doesn't match 'b'"))
