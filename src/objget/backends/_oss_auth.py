"""PURE: Alibaba Cloud OSS request signing, V1 (`OSS ak:sig`, HMAC-SHA1) and V4
(`OSS4-HMAC-SHA256`), and the credentials value they take.

Values in, headers out: no clock, no environment, no network. The caller passes `now` and
adds the returned headers to the request it sends. Cross-checked against oss2's own signers
(`oss2.Auth`, `oss2.AuthV4`, `oss2.StsAuth`) in `tests/unit/test_oss_auth.py`.

What is signed (from the OSS documentation and oss2's implementation):

V1, `Authorization: OSS <ak>:base64(hmac_sha1(secret, string_to_sign))`::

    VERB \\n Content-MD5 \\n Content-Type \\n Date-or-x-oss-date \\n
    CanonicalizedOSSHeaders CanonicalizedResource

where the headers are the `x-oss-*` ones, lower-cased, sorted, one `name:value\\n` each, and
the resource is `/bucket/key` (key as is, not URL-encoded) plus the *subresources* among the
query parameters (`versionId`, `uploadId`, `response-*`, ...), sorted, `?k=v&k2`, unencoded.

V4, `Authorization: OSS4-HMAC-SHA256 Credential=<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request,
Signature=<hex>[, AdditionalHeaders=<a;b>]` (oss2's spelling), with `x-oss-date` and
`x-oss-content-sha256: UNSIGNED-PAYLOAD` added first::

    canonical request = VERB \\n uri-encode("/bucket/key", keep "/") \\n
        sorted uri-encoded query (every parameter) \\n
        lower(name):value\\n for x-oss-*, content-type, content-md5 and the additional headers \\n
        additional header names joined by ";" \\n UNSIGNED-PAYLOAD
    string to sign = "OSS4-HMAC-SHA256" \\n yyyymmddThhmmssZ \\n scope \\n hex(sha256(canonical))
    signing key = HMAC chain over "aliyun_v4"+secret: date, region, product, "aliyun_v4_request"

Header values are trimmed of surrounding whitespace before signing (HTTP strips it on the way,
so the server sees them trimmed); oss2 signs them as given, which only differs for values that
start or end with blanks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime

from ._redact import mask_key_id

__all__ = [
    "SUBRESOURCES",
    "V4_ALGORITHM",
    "OssCredentials",
    "OssRequest",
    "canonical_request_v4",
    "sign_v1",
    "sign_v4",
    "signature_v1",
    "signature_v4",
    "string_to_sign_v1",
    "string_to_sign_v4",
    "v4_scope",
]

V4_ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SECURITY_TOKEN = "x-oss-security-token"  # noqa: S105 - a header name
_V4_TERMINATOR = "aliyun_v4_request"
_V4_ALWAYS_SIGNED = frozenset({"content-type", "content-md5"})
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

# The query parameters V1 signs (OSS calls them subresources); all others are left out.
# fmt: off
SUBRESOURCES = frozenset((
    "acl", "uploads", "location", "cors", "logging", "website", "referer", "lifecycle", "delete",
    "append", "tagging", "objectMeta", "uploadId", "partNumber", "security-token", "position",
    "style", "styleName", "replication", "replicationProgress", "replicationLocation", "cname",
    "bucketInfo", "comp", "qos", "live", "status", "vod", "startTime", "endTime", "symlink",
    "x-oss-process", "response-content-type", "x-oss-traffic-limit", "response-content-language",
    "response-expires", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "restore", "callback", "callback-var", "qosInfo", "policy",
    "stat", "encryption", "versions", "versioning", "versionId", "requestPayment",
    "x-oss-request-payer", "sequential", "inventory", "inventoryId", "continuation-token",
    "asyncFetch", "worm", "wormId", "wormExtend", "link", "group", "objectInfo",
    "transferAcceleration", "metaQuery", "x-oss-ac-source-ip", "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id", "x-oss-ac-forward-allow", "resourceGroup", "x-oss-async-process",
    "regionList", "x-oss-write-get-object-response", "bucketArchiveDirectRead", "httpsConfig",
    "redundancyTransition", "x-oss-target-redundancy-type", "x-oss-redundancy-transition-taskid",
    "accessPoint", "accessPointPolicy", "publicAccessBlock", "x-oss-access-point-name",
    "requesterQosInfo", "qosRequester", "resourcePoolInfo", "resourcePool", "resourcePoolBuckets",
))
# fmt: on


@dataclass(frozen=True, slots=True, repr=False)
class OssCredentials:
    """An access key pair, with the STS security token when temporary, and where it came from.

    `source` names the origin in messages ("env", "profile", "ecs-ram-role", "oss2.Bucket", ...).
    The repr never shows the secret or the token:

    >>> OssCredentials("LTAIexample", "s3cr3t", "tok")
    OssCredentials(access_key_id='LTAIexample', source='env', security_token=<set>)
    """

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    source: str = "env"

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise ValueError("OSS credentials need an access key id and secret")

    def __repr__(self) -> str:
        token = ", security_token=<set>" if self.security_token else ""
        return (
            f"OssCredentials(access_key_id={self.access_key_id!r}, source={self.source!r}{token})"
        )

    def describe(self) -> str:
        """For error messages: the key id and source, never the secret."""
        kind = "STS " if self.security_token else ""
        return f"{kind}access key {mask_key_id(self.access_key_id)} (from {self.source})"


@dataclass(frozen=True, kw_only=True, slots=True)
class OssRequest:
    """What an OSS signature covers: the method, the bucket and the object key as stored (not
    URL-encoded), the query parameters the request carries (values unencoded, "" for a bare
    flag such as `uploads`) and its headers. Every signer, V1, V4 or an oss2 auth object,
    takes one of these."""

    method: str
    bucket: str
    key: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def with_headers(self, added: Mapping[str, str]) -> OssRequest:
        """The request with `added` replacing any same-named (case-insensitive) headers."""
        replaced = {name.lower() for name in added}
        merged = {k: v for k, v in self.headers.items() if k.lower() not in replaced}
        merged.update(added)
        return replace(self, headers=merged)


# -- shared helpers -------------------------------------------------------------------------------


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased, values trimmed; two spellings of one name are an error."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in out:
            raise ValueError(f"header {name!r} given twice")
        out[lower] = value.strip()
    return out


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(timezone.utc)


def _uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986 percent-encoding of the UTF-8 bytes: unreserved characters stay as they are."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _query_item(name: str, value: str) -> str:
    return f"{name}={value}" if value else name


# -- V1 -------------------------------------------------------------------------------------------


def string_to_sign_v1(request: OssRequest) -> bytes:
    """The V1 string to sign for a request carrying exactly its `headers` (Date included)."""
    lower = _lower_headers(request.headers)
    oss_headers = sorted((k, v) for k, v in lower.items() if k.startswith("x-oss-"))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    subresources = sorted((k, v) for k, v in request.params.items() if k in SUBRESOURCES)
    query = "&".join(_query_item(k, v) for k, v in subresources)
    resource = f"/{request.bucket}/{request.key}" if request.bucket else "/"
    if query:
        resource += "?" + query
    date = lower.get("x-oss-date") or lower.get("date", "")
    method = request.method.upper()
    lines = [method, lower.get("content-md5", ""), lower.get("content-type", ""), date]
    return ("\n".join(lines) + "\n" + canon_headers + resource).encode("utf-8")


def signature_v1(secret: str, string_to_sign: bytes) -> str:
    """base64(HMAC-SHA1(secret, string_to_sign))."""
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v1(request: OssRequest, credentials: OssCredentials, *, now: datetime) -> dict[str, str]:
    """The headers to add for V1: `Date`, `x-oss-security-token` (STS) and `Authorization`.

    >>> from datetime import datetime, timezone
    >>> request = OssRequest(method="GET", bucket="b", key="k")
    >>> creds = OssCredentials("ak", "sk")
    >>> h = sign_v1(request, creds, now=datetime(2024, 1, 2, tzinfo=timezone.utc))
    >>> h["Date"], h["Authorization"]
    ('Tue, 02 Jan 2024 00:00:00 GMT', 'OSS ak:MI3cGjeYPecZpTSuRaogfaYtvBA=')
    """
    added = {"Date": format_datetime(_utc(now), usegmt=True)}
    if credentials.security_token:
        added[SECURITY_TOKEN] = credentials.security_token
    text = string_to_sign_v1(request.with_headers(added))
    sig = signature_v1(credentials.access_key_secret, text)
    added["Authorization"] = f"OSS {credentials.access_key_id}:{sig}"
    return added


# -- V4 -------------------------------------------------------------------------------------------


def _additional(names: Collection[str]) -> list[str]:
    """The additional signed header names as V4 lists them: lower-case, sorted, without the
    ones V4 signs anyway (x-oss-*, content-type, content-md5)."""
    lower = {n.lower() for n in names}
    return sorted(n for n in lower if not n.startswith("x-oss-") and n not in _V4_ALWAYS_SIGNED)


def canonical_request_v4(request: OssRequest, additional_headers: Collection[str] = ()) -> bytes:
    """The V4 canonical request for a request carrying exactly its `headers`."""
    lower = _lower_headers(request.headers)
    additional = _additional(additional_headers)
    missing = [n for n in additional if n not in lower]
    if missing:
        raise ValueError(f"additional signed headers not in the request: {missing}")
    path = f"/{request.bucket}/{request.key}" if request.bucket else "/"
    uri = _uri_encode(path, keep_slash=True)
    encoded = sorted(
        (_uri_encode(k, keep_slash=False), _uri_encode(v, keep_slash=False))
        for k, v in request.params.items()
    )
    query = "&".join(_query_item(k, v) for k, v in encoded)
    signed = sorted(
        (k, v)
        for k, v in lower.items()
        if k.startswith("x-oss-") or k in _V4_ALWAYS_SIGNED or k in additional
    )
    canon_headers = "".join(f"{k}:{v}\n" for k, v in signed)
    payload = lower.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
    parts = [request.method.upper(), uri, query, canon_headers, ";".join(additional), payload]
    return "\n".join(parts).encode("utf-8")


def v4_scope(date: str, region: str, product: str = "oss") -> str:
    """`yyyymmdd/region/product/aliyun_v4_request`."""
    return f"{date}/{region}/{product}/{_V4_TERMINATOR}"


def string_to_sign_v4(
    canonical_request: bytes, timestamp: str, region: str, product: str = "oss"
) -> bytes:
    """`timestamp` is the `x-oss-date` value, `yyyymmddThhmmssZ`."""
    digest = hashlib.sha256(canonical_request).hexdigest()
    scope = v4_scope(timestamp[:8], region, product)
    return f"{V4_ALGORITHM}\n{timestamp}\n{scope}\n{digest}".encode()


def signature_v4(
    secret: str, string_to_sign: bytes, timestamp: str, region: str, product: str = "oss"
) -> str:
    """hex(HMAC-SHA256(signing key, string_to_sign)); the key is derived from the date."""
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (timestamp[:8], region, product, _V4_TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign, hashlib.sha256).hexdigest()


def sign_v4(
    request: OssRequest,
    credentials: OssCredentials,
    *,
    region: str,
    now: datetime,
    product: str = "oss",
    additional_headers: Collection[str] = (),
) -> dict[str, str]:
    """The headers to add for V4: `x-oss-date`, `x-oss-content-sha256`, `x-oss-security-token`
    (STS) and `Authorization`. `additional_headers` names headers of the request to sign too.

    >>> from datetime import datetime, timezone
    >>> request = OssRequest(method="GET", bucket="b", key="k")
    >>> creds = OssCredentials("ak", "sk")
    >>> h = sign_v4(request, creds, region="cn-hangzhou",
    ...             now=datetime(2024, 1, 2, tzinfo=timezone.utc))
    >>> h["Authorization"].split(", ")[0]
    'OSS4-HMAC-SHA256 Credential=ak/20240102/cn-hangzhou/oss/aliyun_v4_request'
    """
    if not region:
        raise ValueError("V4 signing needs a region")
    timestamp = _utc(now).strftime("%Y%m%dT%H%M%SZ")
    added = {"x-oss-date": timestamp, "x-oss-content-sha256": UNSIGNED_PAYLOAD}
    if credentials.security_token:
        added[SECURITY_TOKEN] = credentials.security_token
    canonical = canonical_request_v4(request.with_headers(added), additional_headers)
    text = string_to_sign_v4(canonical, timestamp, region, product)
    sig = signature_v4(credentials.access_key_secret, text, timestamp, region, product)
    credential = f"{credentials.access_key_id}/{v4_scope(timestamp[:8], region, product)}"
    auth = f"{V4_ALGORITHM} Credential={credential}, Signature={sig}"
    names = _additional(additional_headers)
    if names:
        auth += f", AdditionalHeaders={';'.join(names)}"
    added["Authorization"] = auth
    return added
