"""TLS failures in words, from the verify code behind the handshake's error; which are final."""

from __future__ import annotations

import ssl

import pytest

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
    reason = tls_reason(verify_error(code, message))
    assert expect in reason
    assert ("--ca-bundle" in reason) is hint


def test_found_through_the_cause_chain():
    outer = ConnectionError("wrapped")
    outer.__cause__ = verify_error(10, "certificate has expired")
    assert "expired" in tls_reason(outer)


def test_handshake_failure_without_verification_detail():
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assert tls_reason(exc) == "TLS handshake failed (wrong version number)"
    assert "host name" in tls_reason(ssl.CertificateError("hostname 'a' doesn't match 'b'"))


# --- which TLS failures are final (issue 14 item 4) ------------------------------------------
def mapped(exc: BaseException) -> Exception:
    from objget import DownloadConfig
    from objget.backends._transport import Transport

    transport = Transport(DownloadConfig())
    try:
        return transport._map(exc, "h.example", "https://h.example/k")
    finally:
        transport.close()


@pytest.mark.parametrize(
    "cause",
    [
        ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF in violation of protocol"),
        ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"),
        ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed"),
        ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"),
    ],
)
def test_a_handshake_cut_short_is_retryable_not_final(cause):
    from objget import TLSError, TransportError
    from objget._retry import is_retryable

    for exc in (cause,):
        err = mapped(exc)
        assert isinstance(err, TransportError) and not isinstance(err, TLSError), err
        assert is_retryable(err)
        assert "h.example" in str(err)


@pytest.mark.parametrize(
    "cause",
    [
        verify_error(20, "unable to get local issuer certificate"),
        verify_error(10, "certificate has expired"),
        verify_error(62, "Hostname mismatch, certificate is not valid for 'x'."),
        ssl.CertificateError("hostname 'a' doesn't match 'b'"),
    ],
)
def test_a_refused_certificate_stays_final(cause):
    from objget import TLSError
    from objget._retry import is_retryable

    err = mapped(cause)
    assert isinstance(err, TLSError), err
    assert not is_retryable(err)
    assert "TLS error talking to h.example" in str(err)


def test_a_port_that_does_not_speak_tls_is_final():
    """Not retried for 40 s: every connection to a plain-http port fails the same way."""
    from objget import TLSError

    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    exc.reason = "WRONG_VERSION_NUMBER"  # as OpenSSL's error sets it
    err = mapped(exc)
    assert isinstance(err, TLSError) and "wrong version number" in str(err)


def test_a_missing_ca_bundle_is_final(tmp_path):
    from objget import TLSError
    from objget.backends._tls import client_context

    with pytest.raises(ssl.SSLError) as info:
        client_context(verify=True, ca_bundle=str(tmp_path / "missing.pem"))
    err = mapped(info.value)
    assert isinstance(err, TLSError) and "CA bundle" in str(err), err


def test_an_unloadable_ca_bundle_is_final(tmp_path):
    from objget import TLSError

    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLError) as info:
        ctx.load_verify_locations(str(empty))
    assert isinstance(mapped(info.value), TLSError)
