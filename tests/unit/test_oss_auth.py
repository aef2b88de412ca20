"""OSS request signing, cross-checked against oss2's own signers as the oracle.

Both sides sign the same method, bucket, key, query and headers at the same frozen instant:
oss2 reads the clock through `oss2.utils.http_date()` (V1 `Date`) and `datetime.utcnow()` in
`oss2.auth` (V4 `x-oss-date`); both are patched to return the instant hypothesis drew.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from unittest import mock

import oss2
import oss2.auth
import oss2.http
import oss2.utils
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends._oss_auth import (
    SUBRESOURCES,
    OssCredentials,
    OssRequest,
    canonical_request_v4,
    sign_v1,
    sign_v4,
    string_to_sign_v1,
)

# -- strategies -----------------------------------------------------------------------------------

_SPECIAL = list(" +%?/#&=~*'()!$,;:@[]\\^`{|}\"<>.-_")
_ANY_CHAR = st.characters(exclude_categories=("Cs",))  # anything UTF-8 can carry
_KEY_CHAR = st.one_of(st.sampled_from(_SPECIAL), _ANY_CHAR, st.sampled_from(list("aZ09中文é")))
_EDGE_KEYS = [
    *"a//b dir/ /leading 100% a+b%20c q?x=1&y 中文/文件.txt %2F ~user emoji-😀 //".split(),
    "a b",
    "tab\tkey",
]
keys = st.one_of(st.sampled_from(_EDGE_KEYS), st.text(_KEY_CHAR, min_size=1, max_size=40))
buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
methods = st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"])
regions = st.sampled_from(["cn-hangzhou", "cn-shanghai", "us-west-1", "ap-southeast-1"])
instants = st.datetimes(
    min_value=datetime(2001, 1, 1),
    max_value=datetime(2098, 12, 31),
    timezones=st.just(timezone.utc),
).map(lambda d: d.replace(microsecond=0))
key_ids = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=30
)
# oss2.Auth strips the secret it is given, so the oracle only agrees on unpadded secrets.
secrets = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("Cs", "Zs", "Cc")),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip())
tokens = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=200)

# Header values as they travel: no surrounding blanks, no line breaks.
_VALUE_CHAR = st.one_of(
    st.characters(min_codepoint=32, max_codepoint=126), st.sampled_from(list("éü中文"))
)
values = st.text(_VALUE_CHAR, max_size=30).map(str.strip)
param_values = st.one_of(st.just(""), st.text(_KEY_CHAR, max_size=20))
_PARAM_NAMES = [
    *"""versionId uploadId partNumber acl uploads response-content-type tagging x-oss-process
    response-content-disposition x-oss-traffic-limit x-oss-request-payer max-keys prefix marker
    encoding-type ünï a/b continuation-token""".split(),
    "foo bar",
]
param_names = st.one_of(st.sampled_from(_PARAM_NAMES), st.text(_KEY_CHAR, min_size=1, max_size=12))
params = st.dictionaries(param_names, param_values, max_size=6)

_HEADER_TOKEN = st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True)
_CASES = [str.lower, str.title, str.upper]
_OSS_HEADERS = (
    "x-oss-range-behavior x-oss-traffic-limit x-oss-request-payer x-oss-date x-oss-acl".split()
)
_OTHER_HEADERS = "content-type content-md5 range if-match accept expires cache-control".split()


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    """x-oss-* headers (meta and others), Content-Type/MD5, and headers no version signs."""
    lower: dict[str, str] = {}
    for token in draw(st.lists(_HEADER_TOKEN, max_size=4)):
        lower[f"x-oss-meta-{token}"] = draw(values)
    for name in draw(st.lists(st.sampled_from(_OSS_HEADERS), max_size=3)):
        lower[name] = draw(values)
    for name in draw(st.lists(st.sampled_from(_OTHER_HEADERS), max_size=4)):
        lower[name] = draw(values)
    return {draw(st.sampled_from(_CASES))(k): v for k, v in lower.items()}


# -- the oracle -----------------------------------------------------------------------------------


class _Frozen(datetime):
    instant: datetime

    @classmethod
    def utcnow(cls) -> datetime:  # type: ignore[override]
        return cls.instant.replace(tzinfo=None)


@contextlib.contextmanager
def frozen_oss2(now: datetime) -> Iterator[None]:
    """Make oss2's signers read `now` for both the V1 Date and the V4 x-oss-date."""
    frozen = type("Frozen", (_Frozen,), {"instant": now})
    with (
        mock.patch.object(
            oss2.utils, "http_date", lambda timeval=None: format_datetime(now, usegmt=True)
        ),
        mock.patch.object(oss2.auth, "datetime", frozen),
    ):
        yield


def oss2_sign(
    auth: Any,
    method: str,
    bucket: str,
    key: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    now: datetime,
    *,
    region: str | None = None,
    additional: list[str] | None = None,
) -> dict[str, str]:
    """The headers of the request oss2 would send, names lower-cased (without the
    User-Agent / Accept-Encoding its Request adds, which no signature covers)."""
    req = oss2.http.Request(
        method,
        "http://127.0.0.1/",
        params=dict(query),
        headers=dict(headers),
        region=region,
        product="oss",
    )
    with frozen_oss2(now):
        if additional is None:
            auth._sign_request(req, bucket, key)
        else:
            auth._sign_request(req, bucket, key, additional)
    return {
        k.lower(): v
        for k, v in req.headers.items()
        if k.lower() not in {"user-agent", "accept-encoding"} or k.lower() in lowered(headers)
    }


def sent(headers: Mapping[str, str], added: Mapping[str, str]) -> dict[str, str]:
    """The headers of the request objget would send: the caller's, updated with the signer's."""
    return {**lowered(headers), **lowered(added)}


def lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@dataclasses.dataclass(frozen=True)
class Req:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    now: datetime

    @property
    def request(self) -> OssRequest:
        return OssRequest(
            method=self.method, bucket=self.bucket, key=self.key, params=self.query,
            headers=self.headers,
        )  # fmt: skip


def _get(
    bucket: str, key: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] = {}
) -> OssRequest:
    return OssRequest(method="GET", bucket=bucket, key=key, params=params or {}, headers=headers)


requests = st.builds(Req, methods, buckets, keys, params, header_sets(), instants)
key_pairs = st.tuples(key_ids, secrets)


def oracle(auth: Any, r: Req, **kw: Any) -> dict[str, str]:
    return oss2_sign(auth, r.method, r.bucket, r.key, r.query, r.headers, r.now, **kw)


def ours_v1(r: Req, creds: OssCredentials) -> dict[str, str]:
    return sent(r.headers, sign_v1(r.request, creds, now=r.now))


def ours_v4(r: Req, creds: OssCredentials, region: str, additional: Any = ()) -> dict[str, str]:
    added = sign_v4(r.request, creds, region=region, now=r.now, additional_headers=additional)
    return sent(r.headers, added)


# -- V1 -------------------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(requests, key_pairs)
def test_v1_matches_oss2(r: Req, pair: tuple[str, str]) -> None:
    assert ours_v1(r, OssCredentials(*pair)) == oracle(oss2.Auth(*pair), r)


@settings(max_examples=120, deadline=None)
@given(requests, key_pairs, tokens)
def test_v1_sts_matches_oss2(r: Req, pair: tuple[str, str], token: str) -> None:
    ours = ours_v1(r, OssCredentials(*pair, token, source="sts"))
    assert ours == oracle(oss2.StsAuth(*pair, token), r)
    assert ours["x-oss-security-token"] == token


# -- V4 -------------------------------------------------------------------------------------------

# oss2 orders the AdditionalHeaders *list* by first letter only; names with distinct first
# letters keep the comparison exact (the canonical request is fully sorted on both sides).
_ADDITIONAL = ["range", "if-match", "accept", "expires", "cache-control"]


@settings(max_examples=250, deadline=None)
@given(requests, key_pairs, regions, st.data())
def test_v4_matches_oss2(r: Req, pair: tuple[str, str], region: str, data: st.DataObject) -> None:
    present = [n for n in _ADDITIONAL if n in lowered(r.headers)]
    extra = st.lists(st.sampled_from(present), unique=True) if present else st.none()
    additional = data.draw(st.one_of(st.none(), extra))
    ours = ours_v4(r, OssCredentials(*pair), region, additional or ())
    assert ours == oracle(oss2.AuthV4(*pair), r, region=region, additional=additional)


@settings(max_examples=120, deadline=None)
@given(requests, key_pairs, tokens, regions)
def test_v4_sts_matches_oss2(r: Req, pair: tuple[str, str], token: str, region: str) -> None:
    ours = ours_v4(r, OssCredentials(*pair, token, source="sts"), region)
    sts = oss2.StsAuth(*pair, token, auth_version=oss2.AUTH_VERSION_4)
    assert ours == oracle(sts, r, region=region)


# -- fixed cases and edges ------------------------------------------------------------------------

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
CREDS = OssCredentials("LTAIexampleKey", "exampleSecret")


@pytest.mark.parametrize(
    "key",
    ["a//b", "100%", "a+b c", "中文 名", "q?x=1", "dir/", "a/../obj", "./x", "a/./b", "..", ".",
     "a/."],
)  # fmt: skip
@pytest.mark.parametrize(
    "version_id", [None, "CAEQNhiBgM0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFhZjhjYmY0****"]
)
def test_edge_keys_and_version_id_both_versions(key: str, version_id: str | None) -> None:
    query = {"versionId": version_id} if version_id else {}
    headers = {"Range": "bytes=0-9", "x-oss-range-behavior": "standard", "If-Match": '"ABC"'}
    r = Req("GET", "bkt", key, query, headers, NOW)
    pair = (CREDS.access_key_id, CREDS.access_key_secret)
    assert ours_v1(r, CREDS) == oracle(oss2.Auth(*pair), r)
    assert ours_v4(r, CREDS, "cn-hangzhou") == oracle(oss2.AuthV4(*pair), r, region="cn-hangzhou")


def test_v1_signs_only_subresources() -> None:
    params = {"versionId": "v1", "prefix": "p", "uploads": ""}
    text = string_to_sign_v1(_get("b", "k", params, {"Date": "D"}))
    assert text == b"GET\n\n\nD\n/b/k?uploads&versionId=v1"
    assert "prefix" not in SUBRESOURCES


def test_v1_prefers_x_oss_date() -> None:
    text = string_to_sign_v1(_get("b", "k", {}, {"Date": "D", "X-Oss-Date": "XD"}))
    assert text.split(b"\n")[3] == b"XD"


def test_v4_canonical_request_layout() -> None:
    canonical = canonical_request_v4(
        _get(
            "b",
            "a b/c+",
            {"versionId": "x/y", "uploads": ""},
            {
                "x-oss-date": "20240506T070809Z",
                "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
                "Content-Type": "t",
                "Range": "bytes=0-1",
            },
        )
    )
    assert canonical.decode() == (
        "GET\n/b/a%20b/c%2B\nuploads&versionId=x%2Fy\n"
        "content-type:t\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20240506T070809Z\n"
        "\n\nUNSIGNED-PAYLOAD"
    )


def test_header_values_are_trimmed() -> None:
    padded = sign_v1(_get("b", "k", {}, {"x-oss-meta-a": "  v  "}), CREDS, now=NOW)
    plain = sign_v1(_get("b", "k", {}, {"x-oss-meta-a": "v"}), CREDS, now=NOW)
    assert padded == plain


def test_duplicate_header_spellings_are_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        ours_v4(
            Req("GET", "b", "k", {}, {"x-oss-meta-a": "1", "X-Oss-Meta-A": "2"}, NOW), CREDS, "r"
        )


def test_signing_replaces_callers_date_headers() -> None:
    r = Req("GET", "b", "k", {}, {"date": "yesterday", "X-OSS-DATE": "20000101T000000Z"}, NOW)
    ours = ours_v4(r, CREDS, "cn-hangzhou")
    assert ours["x-oss-date"] == "20240506T070809Z"
    pair = (CREDS.access_key_id, CREDS.access_key_secret)
    assert ours == oracle(oss2.AuthV4(*pair), r, region="cn-hangzhou")


def test_v4_needs_region_and_aware_time() -> None:
    with pytest.raises(ValueError, match="region"):
        sign_v4(_get("b", "k"), CREDS, region="", now=NOW)
    with pytest.raises(ValueError, match="timezone"):
        sign_v1(_get("b", "k"), CREDS, now=datetime(2024, 1, 1))  # noqa: DTZ001


def test_v4_additional_header_must_be_sent() -> None:
    with pytest.raises(ValueError, match="not in the request"):
        sign_v4(_get("b", "k"), CREDS, region="r", now=NOW, additional_headers=["host"])


def test_v4_non_utc_now_is_converted() -> None:
    from datetime import timedelta

    east8 = NOW.astimezone(timezone(timedelta(hours=8)))
    request = _get("b", "k")
    assert sign_v4(request, CREDS, region="r", now=east8) == sign_v4(
        request, CREDS, region="r", now=NOW
    )


def test_credentials_never_show_the_secret() -> None:
    creds = OssCredentials("LTAIid", "TOPSECRET", "SECRETTOKEN", source="sts")
    for text in (repr(creds), str(creds), creds.describe()):
        assert "TOPSECRET" not in text and "SECRETTOKEN" not in text
    assert "LTAIid" in repr(creds)
    assert "LTAIid" not in creds.describe() and "****" in creds.describe()  # masked, as S3's
    assert "sts" in creds.describe()
    long_id = OssCredentials("LTAI5tObjgetTestKey", "TOPSECRET")
    assert "access key ****tKey" in long_id.describe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.access_key_secret = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        OssCredentials("", "s")


def test_with_headers_replaces_any_spelling_and_leaves_the_request_alone() -> None:
    request = _get("b", "k", {}, {"Date": "old", "X-Oss-Date": "old", "Range": "bytes=0-1"})
    signed = request.with_headers({"date": "new", "x-oss-date": "new"})
    assert dict(signed.headers) == {"Range": "bytes=0-1", "date": "new", "x-oss-date": "new"}
    assert request.headers["Date"] == "old"  # a new request; the caller's is unchanged
    assert (signed.method, signed.bucket, signed.key) == ("GET", "b", "k")
