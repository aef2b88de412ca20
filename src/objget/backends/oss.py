"""Alibaba Cloud OSS backend: `oss://bucket/key[?versionId=...]`, bytes through objget's pool.

Requests are signed by an `OssSigner`: objget's own V1/V4 signer for `oss://` URLs, or the
`oss2.Bucket`'s own auth object in the `resumable_download` drop-in. Objects are fetched as
stored (`Accept-Encoding: identity`, never decoded), pinned with `If-Match`, and verified with
the CRC-64 OSS keeps (`x-oss-hash-crc64ecma`).
"""

from __future__ import annotations

import base64
import binascii
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlencode, urlsplit

from .._exceptions import DownloadError, TransportError
from .._models import ByteRange, ObjectMeta
from .._ranges import range_header
from ._base import ObjectChecks
from ._options import BackendOptions
from ._oss_auth import OssRequest
from ._oss_list import list_oss_objects
from ._s3_list import MAX_PAGE_BYTES, ListedObject
from ._transport import ResponseBody, Transport, error_for_status, retry_after_of

__all__ = [
    "EXPIRED_CODES",
    "OssBackend",
    "OssError",
    "OssSigner",
    "OssTarget",
    "RenewingSigner",
    "open_oss",
    "parse_oss_error",
]

# The 403 codes OSS answers to expired temporary credentials (EC 0002-00000007 and a
# temporary key id it no longer knows); any other 403 is final at once.
EXPIRED_CODES = frozenset({"SecurityTokenExpired", "InvalidAccessKeyId"})


class OssSigner(Protocol):
    """Adds the authentication headers (or nothing, for anonymous access) to a request.

    `description` names the credential source in error messages (never the secret). A
    signer may also renew its credentials (`RenewingSigner`)."""

    @property
    def description(self) -> str: ...

    def sign(self, request: OssRequest, /) -> dict[str, str]:
        """Every header to send: the request's own and the signature's."""
        ...


@runtime_checkable
class RenewingSigner(Protocol):
    """A signer whose credentials expire: `renew(signed_headers)` is called when the store
    refused the request as signed with expired credentials; True when it renewed them, and
    the request is then retried (as a `TransportError`, under the download's retry policy)."""

    def renew(self, signed: Mapping[str, str], /) -> bool: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class OssError:
    code: str | None
    message: str | None
    request_id: str | None
    ec: str | None


def parse_oss_error(xml: bytes) -> OssError:
    """Code, Message, RequestId and EC from an OSS error body (tolerant of garbage)."""
    fields: dict[str, str | None] = {"Code": None, "Message": None, "RequestId": None, "EC": None}
    if xml.strip():
        try:
            root = ET.fromstring(xml)  # noqa: S314 - bounded body from the store we talk to
        except ET.ParseError:
            root = None
        if root is not None:
            for name in fields:
                el = root.find(name)
                if el is not None and el.text:
                    fields[name] = el.text.strip()[:300]
    return OssError(
        code=fields["Code"],
        message=fields["Message"],
        request_id=fields["RequestId"],
        ec=fields["EC"],
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class OssTarget:
    """Where a bucket lives: `scheme://host`, and whether the bucket goes in the path (IP and
    custom endpoints, as oss2 does) or in the host name (virtual-hosted style), or is the host
    itself (CNAME)."""

    endpoint: str
    bucket: str
    path_style: bool = False
    cname: bool = False

    def url(self, key: str, params: Mapping[str, str]) -> str:
        parts = urlsplit(self.endpoint)
        qkey = quote(key, safe="")
        if self.cname:
            base = f"{parts.scheme}://{parts.netloc}/{qkey}"
        elif self.path_style:
            base = f"{parts.scheme}://{parts.netloc}/{self.bucket}/{qkey}"
        else:
            base = f"{parts.scheme}://{self.bucket}.{parts.netloc}/{qkey}"
        return f"{base}?{urlencode(sorted(params.items()))}" if params else base


class OssBackend:
    """Backend for one OSS bucket."""

    def __init__(
        self,
        transport: Transport,
        *,
        target: OssTarget,
        signer: OssSigner,
        request_payer: bool = False,
        traffic_limit: int | None = None,
        verify_crc: bool = True,
    ) -> None:
        self._transport = transport
        self._target = target
        self._signer = signer
        self._verify_crc = verify_crc
        self._extra: dict[str, str] = {}
        if request_payer:
            self._extra["x-oss-request-payer"] = "requester"
        if traffic_limit is not None:
            self._extra["x-oss-traffic-limit"] = str(traffic_limit)

    @property
    def bucket(self) -> str:
        return self._target.bucket

    def display(self, key: str) -> str:
        return f"oss://{self._target.bucket}/{key}"

    def _send(
        self,
        method: str,
        key: str,
        params: dict[str, str],
        headers: dict[str, str],
        *,
        head: bool = False,
    ) -> ResponseBody:
        """Sign and send; an error status raises its typed error (the body closed)."""
        headers = {"Accept-Encoding": "identity", **self._extra, **headers}
        request = OssRequest(
            method=method, bucket=self._target.bucket, key=key, params=params, headers=headers
        )
        signed = self._signer.sign(request)
        url = self._target.url(key, params)
        body = self._transport.request(
            method, url, headers=signed, source=self.display(key), redirect=False
        )
        if body.status >= 300:
            raise self._error(body, key, head=head, signed=signed)
        return body

    def _renewed(self, err: OssError, status: int, signed: Mapping[str, str]) -> bool:
        """A 403 saying the credentials expired, and the signer renewed them."""
        if status != 403 or err.code not in EXPIRED_CODES:
            return False
        if not isinstance(self._signer, RenewingSigner):
            return False
        return bool(self._signer.renew(signed))

    def _error(
        self, body: ResponseBody, key: str, *, head: bool, signed: Mapping[str, str]
    ) -> DownloadError:
        retry_after = retry_after_of(body, now=time.time())
        raw = b""
        if head:
            body.close()
            encoded = body.headers.get("x-oss-err")
            if encoded:
                try:
                    raw = base64.b64decode(encoded)
                except (binascii.Error, ValueError):
                    raw = b""
        else:
            raw = body.read_error_body()
        err = parse_oss_error(raw)
        request_id = err.request_id or body.headers.get("x-oss-request-id")
        detail = " ".join(x for x in (err.code, err.message) if x)
        if err.ec:
            detail = f"{detail} (EC {err.ec})" if detail else f"EC {err.ec}"
        if self._renewed(err, body.status, signed):  # sent again under the retry policy
            return TransportError(
                f"{self.display(key)}: the credentials expired (HTTP 403 {detail}); "
                f"renewed, now {self._signer.description}",
                status=body.status,
                request_id=request_id,
                source=self.display(key),
            )
        return error_for_status(
            body.status,
            source=self.display(key),
            detail=detail,
            code=err.code,
            request_id=request_id,
            retry_after=retry_after,
            credentials=self._signer.description,
        )

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta:
        params = {"versionId": version_id} if version_id else {}
        body = self._send("HEAD", key, params, {}, head=True)
        body.close()
        h = body.headers
        checksums = {}
        crc = h.get("x-oss-hash-crc64ecma")
        if crc and crc.strip().isascii() and crc.strip().isdigit():
            checksums["crc64ecma"] = crc.strip()
        return ObjectMeta(
            size=body.content_length,
            etag=h.get("ETag"),
            last_modified=h.get("Last-Modified"),
            version_id=h.get("x-oss-version-id") or version_id,
            content_encoding=h.get("Content-Encoding"),
            content_type=h.get("Content-Type"),
            checksums=checksums,
            accept_ranges=True,
        )

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> ResponseBody:
        params = {"versionId": meta.version_id} if meta.version_id else {}
        headers: dict[str, str] = {}
        if rng is not None:
            headers["Range"] = range_header(rng)
            headers["x-oss-range-behavior"] = "standard"
        if meta.etag:
            headers["If-Match"] = meta.etag
        return self._send("GET", key, params, headers)

    def object_checks(self, meta: ObjectMeta) -> ObjectChecks:
        """The CRC-64 OSS keeps (`crc64ecma`, decimal), unless CRC checks are turned off."""
        value = meta.checksums.get("crc64ecma")
        if not self._verify_crc or value is None:
            return ObjectChecks()
        return ObjectChecks(values={"crc64ecma": value})

    def list_objects(
        self, prefix: str, *, start_after: str | None = None
    ) -> Iterator[ListedObject]:
        """Every object under `prefix` as (key, size, etag), in key order (ListObjectsV2,
        paginated; `start_after` resumes an interrupted listing)."""

        def send(params: dict[str, str]) -> bytes:
            body = self._send("GET", "", params, {})
            return body.read_error_body(MAX_PAGE_BYTES)

        return list_oss_objects(send, prefix, start_after=start_after, source=self.display(prefix))

    def close(self) -> None:
        """Nothing to release: the transport belongs to the Downloader."""


def open_oss(bucket: str, transport: Transport, options: BackendOptions) -> OssBackend:
    """The backend for one bucket named in an `oss://` URL: its endpoint, region and
    credentials from `options` and the environment (`_oss_setup`)."""
    from ._oss_setup import NativeSigner, credential_source, resolve_target

    target, region = resolve_target(bucket, options)
    signer = NativeSigner(
        credential_source(options), version=options.signature_version, region=region
    )
    return OssBackend(
        transport,
        target=target,
        signer=signer,
        request_payer=options.request_payer,
        traffic_limit=options.oss_traffic_limit,
    )
