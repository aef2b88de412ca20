"""S3 and S3-compatible stores (`s3://bucket/key[?versionId=V]`).

botocore supplies the credential chain and SigV4 (`_s3_auth.py`); every byte goes through the
shared urllib3 `Transport`. HEAD sends `x-amz-checksum-mode: ENABLED` and reads the full-object
CRC (CRC64NVME, CRC32C, CRC32), SHA-256/SHA-1 or COMPOSITE values; the backend only
describes them (`object_checks`, `part_sizes`) and `objget.integrity` checks. GETs pin
the object with `If-Match` and, when the store versions it, `versionId`; requester-pays and
SSE-C headers go on every request (the SSE-C key is never logged or shown). Errors come from
the S3 XML (`_s3_errors.py`); a region redirect is followed once.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from .._exceptions import AccessDenied, DownloadError
from .._log import log
from .._models import ByteRange, ObjectMeta
from .._ranges import range_header
from ._base import ObjectChecks
from ._options import BackendOptions
from ._redact import SecretHeaders
from ._s3_auth import S3Signer
from ._s3_checks import checksums_from_headers, parse_object_parts
from ._s3_urls import default_endpoint, object_url, use_virtual
from ._transport import ResponseBody, Transport, error_for_status, retry_after_of

if TYPE_CHECKING:  # loaded where used: an error answer, a listing (xml.etree, html)
    from ._s3_errors import S3ErrorInfo
    from ._s3_list import ListedObject

__all__ = ["S3Backend", "open_s3"]

_PLAIN_MD5 = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_ACCESS_CODES = frozenset({"ExpiredToken", "InvalidToken", "TokenRefreshRequired"})


class S3Backend:
    """One bucket on one endpoint; the key is the object key (as in the URL, not encoded)."""

    def __init__(
        self,
        transport: Transport,
        bucket: str,
        *,
        options: BackendOptions | None = None,
        signer: S3Signer | None = None,
    ) -> None:
        options = options or BackendOptions()
        self._transport = transport
        self.bucket = bucket
        self._options = options
        self._signer = signer or S3Signer(
            profile=options.profile, anonymous=options.anonymous, region=options.region
        )
        self._custom_endpoint = options.endpoint or self._signer.configured_endpoint()
        self._lock = threading.Lock()
        self._headers = SecretHeaders({"Accept-Encoding": "identity"})  # SSE-C key not in a repr
        if options.request_payer:
            self._headers["x-amz-request-payer"] = "requester"
        if options.sse_c_key is not None:
            import hashlib  # here: OpenSSL loads with an SSE-C key or a signature, not before

            key = options.sse_c_key
            self._headers.update(
                {
                    "x-amz-server-side-encryption-customer-algorithm": "AES256",
                    "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
                    "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(
                        hashlib.md5(key).digest()  # noqa: S324 - the SSE-C protocol's MD5
                    ).decode(),
                }
            )

    @property
    def endpoint(self) -> str:
        return self._custom_endpoint or default_endpoint(self._signer.region)

    @property
    def region(self) -> str:
        return self._signer.region

    def display(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def url(self, key: str, query: tuple[tuple[str, str], ...] = ()) -> str:
        endpoint = self.endpoint
        virtual = use_virtual(self._options.addressing_style, endpoint, self.bucket)
        return object_url(endpoint, self.bucket, key, virtual=virtual, query=query)

    # --- requests -------------------------------------------------------------------
    def _send(
        self,
        method: str,
        key: str,
        headers: Mapping[str, str],
        query: tuple[tuple[str, str], ...],
    ) -> ResponseBody:
        """Sign and send; answers >= 300 become objget errors, after one region redirect."""
        source = self.display(key)
        for attempt in range(2):
            region = self._signer.known_region()  # resolving it may load botocore: only if needed
            url = self.url(key, query)
            merged = {**self._headers, **headers}
            signed = self._signer.sign(method, url, merged)
            body = self._transport.request(
                method, url, headers=signed, source=source, redirect=False
            )
            if body.status < 300:
                return body
            retry_after = retry_after_of(body, now=time.time())
            raw = b"" if method == "HEAD" else body.read_error_body(65536)
            body.close()
            status, rheaders = body.status, body.headers
            if method == "HEAD" and status in (400, 403):
                raw = self._error_body(url, merged, source, status) or raw
            from ._s3_errors import parse_s3_error, redirect_region

            info = parse_s3_error(status, raw, rheaders, head=not raw)
            new_region = redirect_region(info, region or self._signer.region)
            if new_region is not None and attempt == 0:
                log.info(
                    "%s: the bucket is in %s, not %s; retrying there", source, new_region, region
                )
                with self._lock:
                    self._signer.region = new_region
                continue
            raise self._error(info, source, retry_after, head=not raw)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error_body(self, url: str, headers: Mapping[str, str], source: str, status: int) -> bytes:
        """A HEAD error has no body; the same request as a one-byte GET tells the S3 error
        code (SignatureDoesNotMatch, AccessDenied, InvalidAccessKeyId...) when it fails with
        the same status."""
        probe = {k: v for k, v in headers.items() if k != "x-amz-checksum-mode"}
        probe["Range"] = "bytes=0-0"
        try:
            signed = self._signer.sign("GET", url, probe)
            body = self._transport.request(
                "GET", url, headers=signed, source=source, redirect=False
            )
        except DownloadError:
            return b""
        if body.status != status:
            body.close()
            return b""
        return body.read_error_body(65536)

    def _error(
        self, info: S3ErrorInfo, source: str, retry_after: float | None, *, head: bool
    ) -> DownloadError:
        status = info.status
        detail = info.detail
        creds = None
        if status in (401, 403) or info.code in _ACCESS_CODES:
            creds = self._signer.describe()
            if head and status == 403 and not self._options.anonymous:
                detail += (
                    " (a HEAD error has no body: S3 also answers 403 for a missing key when "
                    "the credentials may not list the bucket)"
                )
            if status not in (401, 403):
                return AccessDenied(
                    f"access to {source} denied (HTTP {status}) using {creds}: {detail}",
                    status=status,
                    code=info.code,
                    request_id=info.request_id,
                    source=source,
                )
        sse_c_hint = head or "customer" in detail.lower()
        if status == 400 and sse_c_hint and self._options.sse_c_key is None:
            detail += " (an SSE-C encrypted object needs --sse-c-key-file)"
        if status in (301, 307) and info.region:
            detail += f" (the bucket is in region {info.region}: pass --region {info.region})"
        return error_for_status(
            status,
            source=source,
            detail=detail.strip(),
            code=info.code,
            request_id=info.request_id,
            retry_after=retry_after,
            credentials=creds,
        )

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta:
        query = (("versionId", version_id),) if version_id else ()
        body = self._send("HEAD", key, {"x-amz-checksum-mode": "ENABLED"}, query)
        body.close()
        return self._meta(body, requested_version=version_id)

    def _meta(self, body: ResponseBody, *, requested_version: str | None) -> ObjectMeta:
        h = body.headers
        checksums = checksums_from_headers(h)
        etag = h.get("ETag")
        if self._options.verify_md5:
            md5 = self._md5_of(etag, h)
            if md5 is not None:
                checksums["md5"] = md5
        version = h.get("x-amz-version-id") or requested_version
        return ObjectMeta(
            size=body.content_length,
            etag=etag,
            last_modified=h.get("Last-Modified"),
            version_id=version,
            content_encoding=h.get("Content-Encoding"),
            content_type=h.get("Content-Type"),
            checksums=checksums,
            accept_ranges=True,
        )

    def _md5_of(self, etag: str | None, headers: Mapping[str, str]) -> str | None:
        """The object's MD5 when its ETag is one: single-part upload, not SSE-C or SSE-KMS."""
        m = _PLAIN_MD5.match(etag or "")
        sse = (headers.get("x-amz-server-side-encryption") or "").lower()
        if (
            m is None
            or sse.startswith("aws:kms")
            or headers.get("x-amz-server-side-encryption-customer-algorithm")
        ):
            log.warning(
                "--verify md5: the ETag %s of this object is not its MD5 (multipart upload, "
                "SSE-KMS or SSE-C); MD5 not verified",
                etag,
            )
            return None
        return m.group(1).lower()

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> ResponseBody:
        headers: dict[str, str] = {}
        if rng is not None:
            headers["Range"] = range_header(rng)
        else:  # a whole-object answer carries its checksums (a ranged one never does)
            headers["x-amz-checksum-mode"] = "ENABLED"
        if meta.strong_etag:
            headers["If-Match"] = meta.strong_etag
        version = meta.version_id
        query = (("versionId", version),) if version and version != "null" else ()
        return self._send("GET", key, headers, query)

    def object_checks(self, meta: ObjectMeta) -> ObjectChecks:
        """The checksums HEAD gave (`x-amz-checksum-*`, and the plain-MD5 ETag with
        `--verify md5`), for integrity to check."""
        return ObjectChecks(values=meta.checksums, source=self.bucket)

    def answer_checksums(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The checksums of a whole-object GET answer (`get_range(key, None)`), as from HEAD."""
        return checksums_from_headers(headers)

    def part_sizes(self, key: str, meta: ObjectMeta) -> tuple[int, ...] | None:
        """The multipart upload's part sizes, from GetObjectAttributes (paged by 1000)."""
        sizes: list[int] = []
        marker = 0
        version = meta.version_id
        query = (("attributes", ""),) + ((("versionId", version),) if version else ())
        for _ in range(10):  # at most 10,000 parts
            headers = {
                "x-amz-object-attributes": "ObjectParts",
                "x-amz-max-parts": "1000",
                "x-amz-part-number-marker": str(marker),
            }
            try:
                body = self._send("GET", key, headers, query)
                page = parse_object_parts(body.read_error_body(8 * 1024 * 1024))
            except (DownloadError, ValueError) as exc:
                log.info("%s: GetObjectAttributes gave no part sizes: %s", key, exc)
                return None
            sizes.extend(size for _, size in page.parts)
            if not page.truncated or page.next_marker is None:
                return tuple(sizes)
            marker = page.next_marker
        return None

    def list_objects(
        self, prefix: str, *, start_after: str | None = None
    ) -> Iterator[ListedObject]:
        """Every object under `prefix` as (key, size, etag), in key order (ListObjectsV2,
        paginated; `start_after` resumes an interrupted listing)."""
        from ._s3_list import MAX_PAGE_BYTES, list_pages

        def send(params: dict[str, str]) -> bytes:
            body = self._send("GET", "", {}, tuple(params.items()))
            return body.read_error_body(MAX_PAGE_BYTES)

        source = self.display(prefix)
        return list_pages(send, prefix, start_after=start_after, source=source)

    def close(self) -> None:
        """Nothing to release: the transport belongs to the Downloader."""

    def __repr__(self) -> str:
        return f"S3Backend(bucket={self.bucket!r}, endpoint={self.endpoint!r})"


def open_s3(bucket: str, transport: Transport, options: BackendOptions) -> S3Backend:
    """The backend for one bucket named in an `s3://` URL."""
    return S3Backend(transport, bucket, options=options)
