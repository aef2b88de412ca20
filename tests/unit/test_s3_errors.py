"""S3 error answers: XML fields, body-less HEAD errors, region redirects (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from objget.backends._s3_errors import S3ErrorInfo, parse_s3_error, redirect_region

ACCESS_DENIED = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied &amp; more</Message>
<RequestId>4442587FB7D0A2F9</RequestId><HostId>abc=</HostId></Error>"""

AUTH_MALFORMED = b"""<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization
header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>
<Region>eu-west-1</Region><RequestId>R1</RequestId></Error>"""


def test_xml_fields() -> None:
    info = parse_s3_error(403, ACCESS_DENIED, {"x-amz-request-id": "HEADERID"})
    assert info == S3ErrorInfo(
        status=403,
        code="AccessDenied",
        message="Access Denied & more",
        request_id="4442587FB7D0A2F9",
    )
    assert info.detail == "AccessDenied: Access Denied & more"


def test_head_error_has_no_body() -> None:
    info = parse_s3_error(404, b"", {"x-amz-request-id": "RID"}, head=True)
    assert (info.code, info.message, info.request_id) == ("NoSuchKey", None, "RID")
    assert parse_s3_error(418, b"", {}, head=True).detail == ""


def test_region_from_xml_header_and_message() -> None:
    assert parse_s3_error(400, AUTH_MALFORMED, {}).region == "eu-west-1"
    assert parse_s3_error(301, b"", {"x-amz-bucket-region": "ap-south-1"}, head=True).region == (
        "ap-south-1"
    )
    body = AUTH_MALFORMED.replace(b"<Region>eu-west-1</Region>", b"")
    assert parse_s3_error(400, body, {}).region == "eu-west-1"
    assert parse_s3_error(301, b"", {"x-amz-bucket-region": "not a region!"}).region is None


def test_non_xml_bodies() -> None:
    assert parse_s3_error(502, b"<html><body>bad gateway</body></html>", {}).message is None
    assert parse_s3_error(500, b"plain  text\nerror", {}).message == "plain text error"


def test_redirect_region_rules() -> None:
    moved = parse_s3_error(301, b"", {"x-amz-bucket-region": "eu-west-1"}, head=True)
    assert redirect_region(moved, "us-east-1") == "eu-west-1"
    assert redirect_region(moved, "eu-west-1") is None  # already there: no loop
    assert redirect_region(parse_s3_error(400, AUTH_MALFORMED, {}), "us-east-1") == "eu-west-1"
    denied = parse_s3_error(403, ACCESS_DENIED, {"x-amz-bucket-region": "eu-west-1"})
    assert redirect_region(denied, "us-east-1") is None
    other400 = S3ErrorInfo(status=400, code="InvalidArgument", region="eu-west-1")
    assert redirect_region(other400, "us-east-1") is None


@given(status=st.integers(min_value=300, max_value=599), body=st.binary(max_size=3000))
def test_parser_never_raises(status: int, body: bytes) -> None:
    info = parse_s3_error(status, body, {})
    assert info.status == status
    assert info.message is None or len(info.message) <= 2048


@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<&>"),
        max_size=200,
    )
)
def test_message_text_survives(text: str) -> None:
    body = f"<Error><Code>X</Code><Message>{text}</Message></Error>".encode()
    assert parse_s3_error(400, body, {}).message == (text.strip() or None)
