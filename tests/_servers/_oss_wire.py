"""The OSS protocol as the test server speaks it: request addressing, signature checks, ranges,
and OSS error answers. No sockets here; `oss_server.py` does the I/O.

Signatures are verified by recomputing them with objget's signer (`objget.backends._oss_auth`,
itself cross-checked against oss2's signers), from the request exactly as it arrived: the
decoded path gives bucket and key, the decoded query the parameters, the received headers the
signed headers. The compat tests then prove the server accepts what oss2 signs and refuses a
wrong secret, so the check is not circular.

Error codes, messages and HTTP statuses follow OSS's documentation; the `EC` values have the
OSS shape (`0026-00000001`) but only the common ones are the documented values.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from objget.backends import _oss_auth as auth

__all__ = [
    "OssFault",
    "Target",
    "error_xml",
    "new_request_id",
    "parse_target",
    "plan_range",
    "verify_request",
]

MAX_SKEW = timedelta(minutes=15)

_ERROR_TABLE = """
AccessDenied 403 0003-00000001 You have no right to access this object because of bucket acl.
BucketAlreadyExists 409 0015-00000104 The requested bucket name is not available.
EntityTooSmall 400 0042-00000002 Your proposed upload is smaller than the minimum allowed size.
InternalError 500 0000-00000001 We encountered an internal error. Please try again.
InvalidAccessKeyId 403 0002-00000902 The OSS Access Key Id you provided does not exist in \
our records.
InvalidArgument 400 0017-00000001 Invalid argument.
InvalidBucketName 400 0015-00000001 The specified bucket is not valid.
InvalidDigest 400 0016-00000008 The Content-MD5 you specified is not valid.
InvalidPart 400 0042-00000003 One or more of the specified parts could not be found.
InvalidRange 416 0026-00000004 The requested range cannot be satisfied
MalformedXML 400 0042-00000012 The XML you provided was not well-formed.
MethodNotAllowed 405 0000-00000003 The specified method is not allowed against this resource.
NoSuchBucket 404 0015-00000101 The specified bucket does not exist.
NoSuchKey 404 0026-00000001 The specified key does not exist.
NoSuchUpload 404 0042-00000001 The specified upload does not exist.
NoSuchVersion 404 0026-00000002 The specified version does not exist.
NotImplemented 501 0000-00000002 A header you provided implies functionality that is not \
implemented.
PreconditionFailed 412 0026-00000003 At least one of the pre-conditions you specified did not hold.
SecurityTokenExpired 403 0002-00000007 The security token you provided has expired.
RequestTimeTooSkewed 403 0002-00000504 The difference between the request time and the \
current time is too large.
ServiceUnavailable 503 0000-00000005 Please reduce your request rate.
SignatureDoesNotMatch 403 0002-00000040 The request signature we calculated does not match the \
signature you provided. Check your key and signing method.
"""
# code -> (HTTP status, message, EC)
ERRORS: dict[str, tuple[int, str, str]] = {
    code: (int(status), message, ec)
    for code, status, ec, message in (
        line.split(" ", 3) for line in _ERROR_TABLE.strip().splitlines()
    )
}


class OssFault(Exception):
    """An OSS error answer: status, Code, Message, EC and extra XML fields / headers."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        known_status, known_message, ec = ERRORS.get(code, (500, code, "0000-00000000"))
        self.code = code
        self.status = status or known_status
        self.message = message or known_message
        self.ec = ec
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {code}: {self.message}")


def new_request_id() -> str:
    """24 upper-case hex characters, like OSS's `x-oss-request-id`."""
    return secrets.token_hex(12).upper()


def error_xml(fault: OssFault, request_id: str, host_id: str) -> bytes:
    """The body of an OSS error answer (also what `x-oss-err` carries, base64, on HEAD)."""
    parts = [
        f"<Code>{escape(fault.code)}</Code>",
        f"<Message>{escape(fault.message)}</Message>",
        f"<RequestId>{request_id}</RequestId>",
        f"<HostId>{escape(host_id)}</HostId>",
        *(f"<{k}>{escape(v)}</{k}>" for k, v in fault.fields.items()),
        f"<EC>{fault.ec}</EC>",
        f"<RecommendDoc>https://api.aliyun.com/troubleshoot?q={fault.ec}</RecommendDoc>",
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  ' + "\n  ".join(parts) + "\n</Error>\n"
    ).encode()


def x_oss_err(body: bytes) -> str:
    return base64.b64encode(body).decode("ascii")


# -- addressing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a request addresses. `params` are decoded query parameters ("" for a bare flag)."""

    bucket: str
    key: str
    params: dict[str, str]
    virtual_host: bool
    host: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def _is_ip_or_localhost(hostname: str) -> bool:
    if hostname in ("localhost", ""):
        return True
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return True


def parse_target(raw_path: str, headers: Mapping[str, str]) -> Target:
    """Bucket, key and parameters from the request line and the Host header.

    An IP or `localhost` Host means path style (`/bucket/key`, as oss2 uses for IP endpoints);
    any other Host names the bucket in its first label (`bucket.<anything>`, virtual-hosted).
    """
    host = headers.get("host", "")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    path, _, query = raw_path.partition("?")
    try:
        path = unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise OssFault("InvalidArgument", "The object name is not valid UTF-8.") from exc
    params = dict(parse_qsl(query, keep_blank_values=True))
    rest = path[1:] if path.startswith("/") else path
    if _is_ip_or_localhost(hostname):
        bucket, _, key = rest.partition("/")
        return Target(bucket, key, params, False, host, dict(headers))
    return Target(hostname.split(".", 1)[0], rest, params, True, host, dict(headers))


# -- authentication -------------------------------------------------------------------------------


def _check_skew(when: datetime, now: datetime) -> None:
    if abs(now - when) > MAX_SKEW:
        raise OssFault(
            "RequestTimeTooSkewed",
            fields={"RequestTime": when.isoformat(), "ServerTime": now.isoformat()},
        )


def _secret_for(
    ak: str,
    headers: Mapping[str, str],
    keys: Mapping[str, str],
    sts: Mapping[str, tuple[str, str]],
    expiry: Mapping[str, datetime],
    now: datetime,
) -> str:
    if ak in sts:
        secret, token = sts[ak]
        if not hmac.compare_digest(headers.get("x-oss-security-token", ""), token):
            raise OssFault(
                "InvalidAccessKeyId",
                "The security token you provided is invalid.",
                fields={"OSSAccessKeyId": ak},
            )
        ends = expiry.get(ak)
        if ends is not None and now >= ends:
            raise OssFault(
                "SecurityTokenExpired",
                fields={"OSSAccessKeyId": ak, "Expiration": ends.strftime("%Y-%m-%dT%H:%M:%SZ")},
            )
        return secret
    if ak in keys:
        return keys[ak]
    raise OssFault("InvalidAccessKeyId", fields={"OSSAccessKeyId": ak})


def _mismatch(ak: str, text: bytes, provided: str) -> OssFault:
    return OssFault(
        "SignatureDoesNotMatch",
        fields={
            "StringToSign": text.decode("utf-8", "replace"),
            "SignatureProvided": provided,
            "OSSAccessKeyId": ak,
        },
    )


def _request(method: str, t: Target, headers: Mapping[str, str]) -> auth.OssRequest:
    """What the signature of a request to `t` with `headers` covers."""
    return auth.OssRequest(
        method=method, bucket=t.bucket, key=t.key, params=t.params, headers=headers
    )


def _verify_v1(method: str, t: Target, value: str, secret_of: _SecretOf, now: datetime) -> str:
    ak, sep, provided = value[4:].strip().rpartition(":")
    if not sep or not ak:
        raise OssFault("InvalidArgument", "Authorization header is invalid.")
    secret = secret_of(ak)
    date = t.headers.get("x-oss-date") or t.headers.get("date", "")
    try:
        _check_skew(parsedate_to_datetime(date), now)
    except (TypeError, ValueError) as exc:
        raise OssFault("AccessDenied", "Invalid date format of header Date.") from exc
    text = auth.string_to_sign_v1(_request(method, t, t.headers))
    if not hmac.compare_digest(auth.signature_v1(secret, text), provided):
        raise _mismatch(ak, text, provided)
    return ak


_V4_FIELD = re.compile(r"\s*(Credential|Signature|AdditionalHeaders)\s*=\s*([^,]*)")


def _verify_v4(
    method: str, t: Target, value: str, secret_of: _SecretOf, now: datetime, region: str
) -> str:
    fields = dict(_V4_FIELD.findall(value[len(auth.V4_ALGORITHM) :]))
    try:
        ak, day, cred_region, product, terminator = fields["Credential"].strip().split("/")
        provided = fields["Signature"].strip()
    except (KeyError, ValueError) as exc:
        raise OssFault("InvalidArgument", "Authorization header is invalid.") from exc
    secret = secret_of(ak)
    timestamp = t.headers.get("x-oss-date", "")
    try:
        when = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise OssFault("AccessDenied", "Invalid date format of header x-oss-date.") from exc
    _check_skew(when, now)
    if cred_region != region or terminator != "aliyun_v4_request" or day != timestamp[:8]:
        raise OssFault(
            "SignatureDoesNotMatch",
            f"Invalid credential scope {fields['Credential']!r} (region {region}).",
        )
    additional = [h for h in fields.get("AdditionalHeaders", "").strip().split(";") if h]
    try:
        canonical = auth.canonical_request_v4(_request(method, t, t.headers), additional)
    except ValueError as exc:
        raise OssFault("SignatureDoesNotMatch", str(exc)) from exc
    text = auth.string_to_sign_v4(canonical, timestamp, region, product)
    if not hmac.compare_digest(
        auth.signature_v4(secret, text, timestamp, region, product), provided
    ):
        fault = _mismatch(ak, text, provided)
        fault.fields["CanonicalRequest"] = canonical.decode("utf-8", "replace")
        raise fault
    return ak


def _verify_query_v1(method: str, t: Target, secret_of: _SecretOf, now: datetime) -> str:
    """A V1 presigned URL: `OSSAccessKeyId`, `Expires`, `Signature` in the query."""
    ak, expires, provided = (
        t.params.get(k, "") for k in ("OSSAccessKeyId", "Expires", "Signature")
    )
    secret = secret_of(ak)
    if not expires.isdigit() or int(expires) < now.timestamp():
        raise OssFault("AccessDenied", "Request has expired.", fields={"Expires": expires})
    headers = {k: v for k, v in t.headers.items() if k not in ("date", "x-oss-date")}
    headers["date"] = expires
    text = auth.string_to_sign_v1(_request(method, t, headers))
    if not hmac.compare_digest(auth.signature_v1(secret, text), provided):
        raise _mismatch(ak, text, provided)
    return ak


class _SecretOf:
    def __init__(
        self,
        headers: Mapping[str, str],
        keys: Mapping[str, str],
        sts: Mapping[str, tuple[str, str]],
        expiry: Mapping[str, datetime],
        now: datetime,
    ) -> None:
        self._args = (headers, keys, sts, expiry, now)

    def __call__(self, ak: str) -> str:
        return _secret_for(ak, *self._args)


def verify_request(
    method: str,
    t: Target,
    *,
    keys: Mapping[str, str],
    sts: Mapping[str, tuple[str, str]],
    region: str,
    anonymous: bool,
    now: datetime,
    expiry: Mapping[str, datetime] | None = None,
) -> str | None:
    """The access key id that signed the request (None: anonymous and allowed); else OssFault.
    `expiry` maps STS key ids to the moment their token expires (SecurityTokenExpired from
    then on)."""
    ends = expiry or {}
    value = t.headers.get("authorization", "")
    if "Signature" in t.params and "OSSAccessKeyId" in t.params:
        headers = {**t.headers, "x-oss-security-token": t.params.get("security-token", "")}
        return _verify_query_v1(method, t, _SecretOf(headers, keys, sts, ends, now), now)
    secret_of = _SecretOf(t.headers, keys, sts, ends, now)
    if value.startswith("OSS "):
        return _verify_v1(method, t, value, secret_of, now)
    if value.startswith(auth.V4_ALGORITHM + " "):
        return _verify_v4(method, t, value, secret_of, now, region)
    if value:
        raise OssFault("InvalidArgument", "Authorization header is invalid.")
    if anonymous:
        return None
    raise OssFault("AccessDenied", "AccessDenied: anonymous access is not allowed.")


# -- ranges ---------------------------------------------------------------------------------------

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def plan_range(header: str | None, size: int, *, standard: bool) -> tuple[int, int] | None:
    """`[start, stop)` to answer with 206, None for a 200 with the whole object.

    OSS's two behaviours: by default a range it cannot serve exactly (past the end, reversed)
    is ignored and the whole object comes back with 200; with `x-oss-range-behavior: standard`
    the end is clipped to the size and an unsatisfiable start is 416 InvalidRange. A header
    that is not one `bytes=` range is ignored either way.
    """
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            if standard:
                raise OssFault("InvalidRange", fields={"ActualObjectSize": str(size)})
            return None
        if n > size and not standard:
            return None
        return (max(0, size - n), size)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        if standard:
            raise OssFault("InvalidRange", fields={"ActualObjectSize": str(size)})
        return None
    if end >= size and not standard and last:
        return None
    return (start, min(end, size - 1) + 1)
