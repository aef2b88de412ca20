"""Secrets out of URLs and log records (issue 14 item 3): every URL query's values, URL
user:password, secret headers and signatures, in the formatted message and the traceback."""

from __future__ import annotations

import logging

import pytest

from objget.backends._redact import (
    RedactFilter,
    SecretHeaders,
    SecretPairs,
    install_redaction,
    mask_key_id,
    redact_text,
    redact_url,
)

SIG = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
URL = f"https://h.example/b/k.bin?versionId=v1&X-Amz-Signature={SIG}&X-Amz-Credential=AKID%2F1"


@pytest.mark.parametrize(
    "text",
    [
        f"Redirecting {URL} -> http://other.example/x?sig={SIG}",  # urllib3.poolmanager, INFO
        f"Incremented Retry for (url='/b/k.bin?X-Amz-Signature={SIG}'): Retry(total=None)",
        f'https://h.example:443 "GET /b/k.bin?X-Amz-Signature={SIG} HTTP/1.1" 206 1024',
        f'MaxRetryError("HTTPSConnectionPool: Max retries exceeded with url: /k?s={SIG} (x)")',
        f"Signature:\n{SIG}",  # botocore.auth
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature={SIG}",
        f"{{'Authorization': b'OSS4-HMAC-SHA256 Signature={SIG}'}}",
        f"{{'x-amz-security-token': '{SIG}'}}",
        f"x-amz-server-side-encryption-customer-key:{SIG}",
        f"fetching https://user:{SIG}@h.example/k",
        f"Cookie: session={SIG}",
        f"{{'Proxy-Authorization': 'Basic {SIG}'}}",
    ],
)
def test_redact_text_removes_the_secret(text):
    out = redact_text(text)
    assert SIG not in out, out
    assert "REDACTED" in out


def test_redact_keeps_what_is_useful():
    out = redact_text(f"Redirecting {URL} -> x")
    assert (
        "versionId=v1" in out and "X-Amz-Signature=REDACTED" in out and "h.example/b/k.bin" in out
    )
    assert redact_text("what? nothing: here") == "what? nothing: here"
    assert redact_url(URL) == (
        "https://h.example/b/k.bin?versionId=v1&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"
    )


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("urllib3.poolmanager", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_redacts_arguments_of_any_type_and_the_traceback():
    class Url:
        def __repr__(self) -> str:
            return URL

    try:
        raise ValueError(f"bad answer from {URL}")
    except ValueError as e:
        exc = e
    rec = record("Redirecting %s -> %r (%d)", URL, Url(), 3, exc=exc)
    assert RedactFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert SIG not in text and "AKID" not in text, text
    assert "(3)" in text and "ValueError" in text
    assert RedactFilter().filter(rec) and logging.Formatter().format(rec) == text  # idempotent


def test_filter_survives_a_broken_format():
    rec = record("%d items", "not a number")
    assert RedactFilter().filter(rec)
    assert rec.args is None


@pytest.mark.parametrize(
    "name", ["urllib3.poolmanager", "urllib3.util.retry", "urllib3.connectionpool", "botocore.auth"]
)
def test_library_loggers_redact_before_any_handler(name, caplog):
    install_redaction()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger(name).info("Redirecting %s -> %s", URL, URL)
    assert caplog.records and SIG not in caplog.text, caplog.text


def test_secret_headers_hide_credential_values_in_repr_and_str():
    h = SecretHeaders(
        {
            "Accept-Encoding": "identity",
            "x-amz-server-side-encryption-customer-key": SIG,
            "Authorization": f"Bearer {SIG}",
            "X-Api-Key": SIG,
        }
    )
    for text in (repr(h), str(h), f"{h}", repr({"held": h})):
        assert SIG not in text and "identity" in text, text
    assert h["Authorization"] == f"Bearer {SIG}"  # still the real value to send
    assert {**h}["X-Api-Key"] == SIG


def test_secret_pairs_hide_credential_values_and_stay_a_tuple():
    import pickle

    pairs = SecretPairs([("Authorization", f"Bearer {SIG}"), ("Accept", "*/*")])
    for text in (repr(pairs), str(pairs), repr([pairs])):
        assert SIG not in text and "*/*" in text, text
    assert pairs == (("Authorization", f"Bearer {SIG}"), ("Accept", "*/*"))
    assert hash(pairs) == hash(tuple(pairs))
    again = pickle.loads(pickle.dumps(pairs))
    assert again == pairs and type(again) is SecretPairs and SIG not in repr(again)


def test_mask_key_id():
    assert mask_key_id("AKIAIOSFODNN7EXAMPLE") == "****MPLE"
    assert mask_key_id("short") == "****"
