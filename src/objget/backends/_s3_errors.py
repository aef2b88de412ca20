"""PURE: S3 error answers — the XML body (Code, Message, RequestId, Region) and the headers a
body-less HEAD error leaves (status, x-amz-request-id, x-amz-bucket-region).

The XML is read with anchored regular expressions over the flat `<Error>` element, not with
an XML parser: nothing in an error body is nested, and no entity is ever expanded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["S3ErrorInfo", "parse_s3_error", "redirect_region"]

_FIELD = re.compile(rb"<(Code|Message|RequestId|Region|BucketRegion|Endpoint)>([^<]{0,2048})</\1>")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EXPECTING = re.compile(r"expecting '([a-z0-9-]+)'")
_HEAD_CODES = {
    301: "PermanentRedirect",
    307: "TemporaryRedirect",
    400: "BadRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    412: "PreconditionFailed",
    416: "InvalidRange",
    503: "SlowDown",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class S3ErrorInfo:
    """What an S3 error answer said. `code` is guessed from the status for body-less answers."""

    status: int
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    region: str | None = None

    @property
    def detail(self) -> str:
        """`Code: Message` for error messages (empty when the store said nothing)."""
        parts = [p for p in (self.code, self.message) if p]
        return ": ".join(parts)


def parse_s3_error(
    status: int, body: bytes, headers: Mapping[str, str], *, head: bool = False
) -> S3ErrorInfo:
    """The error of one answer: fields from the XML body, else from the headers."""
    fields: dict[str, str] = {}
    for m in _FIELD.finditer(body[:65536]):
        name = m.group(1).decode("ascii")
        value = html.unescape(m.group(2).decode("utf-8", "replace")).strip()
        if value:
            fields.setdefault(name, value)
    code = fields.get("Code") or (_HEAD_CODES.get(status) if head or not body else None)
    message = fields.get("Message")
    if message is None and not fields and body.strip() and not head:
        text = " ".join(body[:512].decode("utf-8", "replace").split())
        message = None if "<html" in text.lower() else text[:200] or None
    region = (
        headers.get("x-amz-bucket-region") or fields.get("Region") or fields.get("BucketRegion")
    )
    if region is None and message:
        m2 = _EXPECTING.search(message)
        region = m2.group(1) if m2 else None
    if region is not None and not _REGION.match(region):
        region = None
    return S3ErrorInfo(
        status=status,
        code=code,
        message=message,
        request_id=fields.get("RequestId") or headers.get("x-amz-request-id"),
        region=region,
    )


def redirect_region(info: S3ErrorInfo, current: str) -> str | None:
    """The region to retry in, when the answer says the bucket lives elsewhere."""
    if info.region is None or info.region == current:
        return None
    if info.status in (301, 307):
        return info.region
    if info.status == 400 and info.code in (
        None,
        "BadRequest",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
    ):
        return info.region
    return None
