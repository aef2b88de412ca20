"""s3:// URL parsing, endpoints, path vs virtual-hosted addressing (pure)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget.backends._s3_urls import (
    S3Location,
    default_endpoint,
    object_url,
    parse_s3_url,
    use_virtual,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://b1/k", S3Location(bucket="b1", key="k")),
        ("S3://bucket/dir/sub/file.bin", S3Location(bucket="bucket", key="dir/sub/file.bin")),
        ("s3://my.bucket/a b+c%20d", S3Location(bucket="my.bucket", key="a b+c%20d")),
        ("s3://b1/k?versionId=3HL4kqt", S3Location(bucket="b1", key="k", version_id="3HL4kqt")),
        ("s3://b1/what?x=1", S3Location(bucket="b1", key="what?x=1")),
        ("s3://b1/dir/", S3Location(bucket="b1", key="dir/")),
        ("s3://b1/ünï/😀", S3Location(bucket="b1", key="ünï/😀")),
    ],
)
def test_parse(url: str, expected: S3Location) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://b/k", "not an s3://"),
        ("s3://", "bucket name"),
        ("s3:///k", "bucket name"),
        ("s3://bucket", "no object key"),
        ("s3://bucket/", "no object key"),
        ("s3://b@d/k", "bucket name"),
    ],
)
def test_parse_rejects(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_s3_url(url)


def test_default_endpoint() -> None:
    assert default_endpoint("eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
    assert default_endpoint("cn-north-1") == "https://s3.cn-north-1.amazonaws.com.cn"


@pytest.mark.parametrize(
    ("style", "endpoint", "bucket", "virtual"),
    [
        ("auto", "https://s3.us-east-1.amazonaws.com", "data", True),
        ("auto", "https://s3.us-east-1.amazonaws.com", "my.data", False),  # TLS wildcard
        ("auto", "http://s3.us-east-1.amazonaws.com", "my.data", True),
        ("auto", "https://s3.us-east-1.amazonaws.com", "Upper", False),
        ("auto", "https://s3.us-east-1.amazonaws.com", "under_score", False),
        ("auto", "http://127.0.0.1:8333", "data", False),
        ("auto", "http://[::1]:8333", "data", False),
        ("auto", "https://minio.example.internal", "data", False),
        ("path", "https://s3.us-east-1.amazonaws.com", "data", False),
        ("virtual", "http://127.0.0.1:8333", "data", True),
    ],
)
def test_addressing(style: str, endpoint: str, bucket: str, virtual: bool) -> None:
    assert use_virtual(style, endpoint, bucket) is virtual


def test_object_url_forms() -> None:
    assert (
        object_url("http://127.0.0.1:9000", "b", "d/a b+c", virtual=False)
        == "http://127.0.0.1:9000/b/d/a%20b%2Bc"
    )
    assert (
        object_url("https://s3.eu-west-1.amazonaws.com/", "b", "k~1", virtual=True)
        == "https://b.s3.eu-west-1.amazonaws.com/k~1"
    )
    assert (
        object_url("http://h:1/prefix/", "b", "k", virtual=False, query=(("versionId", "a+b/c"),))
        == "http://h:1/prefix/b/k?versionId=a%2Bb%2Fc"
    )


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9000", "ftp://h", "http://"])
def test_object_url_rejects_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        object_url(endpoint, "b", "k", virtual=False)


@given(key=st.text(min_size=1, max_size=60).filter(lambda k: "\x00" not in k))
def test_any_key_roundtrips_through_the_url(key: str) -> None:
    url = object_url("http://127.0.0.1:1", "bucket", key, virtual=False)
    parts = urlsplit(url)
    assert not parts.query and not parts.fragment
    assert unquote(parts.path) == f"/bucket/{key}"
    assert parse_s3_url(f"s3://bucket/{key}").key == key or "?versionId=" in key


# Keys whose `.`/`..`/empty segments an URL normaliser would rewrite. S3 keys are names, not
# paths: botocore (and every AWS SDK, per the S3 protocol tests) sends them literally.
DOT_KEYS = ["a/../obj", "../obj", "./x", "a/./b", "..", ".", "a//b", "a/.", "a/..", "/x"]


def botocore_url(key: str, style: str, endpoint: str) -> str:
    """The URL botocore's own S3 client requests for `key` (captured before it is sent)."""
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore import UNSIGNED
    from botocore.config import Config

    class Sent(Exception):
        pass

    def capture(request: object, **_: object) -> None:
        raise Sent(getattr(request, "url", None))

    client = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": style}),
    )
    client.meta.events.register("before-send.s3.GetObject", capture)
    try:
        with pytest.raises(Sent) as sent:
            client.get_object(Bucket="bkt", Key=key)
    finally:
        client.close()
    return str(sent.value.args[0])


@pytest.mark.parametrize("key", DOT_KEYS)
@pytest.mark.parametrize("virtual", [False, True], ids=["path", "virtual"])
def test_dot_segment_keys_are_written_as_botocore_writes_them(key: str, virtual: bool) -> None:
    endpoint = "https://s3.us-east-1.amazonaws.com"
    url = object_url(endpoint, "bkt", key, virtual=virtual)
    assert url == botocore_url(key, "virtual" if virtual else "path", endpoint)
    prefix = "https://bkt.s3.us-east-1.amazonaws.com/" if virtual else f"{endpoint}/bkt/"
    assert url == prefix + key  # literally: no segment removed, merged or encoded
