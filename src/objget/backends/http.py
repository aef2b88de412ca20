"""Plain HTTP(S) backend: any URL, including presigned ones (query redacted everywhere).

Pins the object with `If-Match` when the server gave a strong ETag, else with `If-Range`
(ETag or Last-Modified), so a changed object never mixes into the file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .._exceptions import DownloadError, ObjectChanged
from .._log import log
from .._models import ByteRange, ObjectMeta
from .._ranges import parse_content_range, range_header
from ._base import ObjectChecks
from ._headers import check_headers, redacted
from ._redact import SecretHeaders
from ._transport import ResponseBody, Transport, error_for_status, redact_url, retry_after_of

__all__ = ["HttpBackend"]


class HttpBackend:
    """Backend for `http://` and `https://` URLs; the key is the full URL. `headers` are sent
    with every request (`--header`); credential-like values are redacted in the debug log."""

    def __init__(self, transport: Transport, *, headers: Mapping[str, str] | None = None) -> None:
        self._transport = transport
        self._extra = SecretHeaders(check_headers(headers or {}))
        self._headers = SecretHeaders({"Accept-Encoding": "identity", **self._extra})

    def display(self, key: str) -> str:
        return redact_url(key)

    def _error(self, body: ResponseBody, source: str) -> DownloadError:
        retry_after = retry_after_of(body, now=time.time())
        text = body.read_error_body(2048).decode("utf-8", "replace")
        detail = "" if "<html" in text.lower() else " ".join(text.split())[:200]
        return error_for_status(body.status, source=source, detail=detail, retry_after=retry_after)

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta:
        source = self.display(key)
        if self._extra:
            log.debug("%s: extra request headers %s", source, redacted(self._extra))
        body = self._transport.request("HEAD", key, headers=self._headers, source=source)
        if body.status in (403, 405, 501):
            body.close()
            return self._probe(key, source)
        if body.status >= 400:
            raise self._error(body, source)
        body.close()
        meta = _meta_from(body, size=body.content_length)
        if meta.size is not None and not meta.accept_ranges and meta.size > 0:
            advertised = body.headers.get("Accept-Ranges", "").strip().lower()
            if advertised != "none":
                return self._probe(key, source)
        return meta

    def _probe(self, key: str, source: str) -> ObjectMeta:
        """GET the first byte: tells size and range support where HEAD does not (presigned
        GET-only URLs, servers without Accept-Ranges)."""
        headers = {**self._headers, "Range": "bytes=0-0"}
        body = self._transport.request("GET", key, headers=headers, source=source)
        if body.status >= 400 and body.status != 416:
            raise self._error(body, source)
        if body.status == 416:  # an empty object answers 416 to bytes=0-0
            body.close()
            return _meta_from(body, size=0)
        cr = parse_content_range(body.content_range) if body.status == 206 else None
        if cr is not None and cr.total is not None:
            body.read_error_body(16)
            return _meta_from(body, size=cr.total, ranges=True)
        body.close()
        return _meta_from(body, size=body.content_length, ranges=False)

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> ResponseBody:
        source = self.display(key)
        headers = dict(self._headers)
        if rng is not None:
            headers["Range"] = range_header(rng)
            if meta.strong_etag:
                headers["If-Match"] = meta.strong_etag
            elif meta.last_modified:
                headers["If-Range"] = meta.last_modified
        body = self._transport.request("GET", key, headers=headers, source=source)
        if body.status >= 400:
            raise self._error(body, source)
        if body.status == 200 and rng is not None:
            now = _meta_from(body, size=body.content_length)
            if (meta.etag and now.etag and now.etag != meta.etag) or (
                meta.last_modified and now.last_modified and now.last_modified != meta.last_modified
            ):
                body.close()
                raise ObjectChanged(
                    f"{source} changed during the download (new ETag/Last-Modified); run again "
                    "to download the new version",
                    status=200,
                    source=source,
                )
        return body

    def object_checks(self, meta: ObjectMeta) -> ObjectChecks:
        """A plain HTTP server keeps no checksum objget can rely on."""
        return ObjectChecks()

    def close(self) -> None:
        """Nothing to release: the transport belongs to the Downloader."""


def _meta_from(body: ResponseBody, *, size: int | None, ranges: bool | None = None) -> ObjectMeta:
    h = body.headers
    accept = h.get("Accept-Ranges", "").strip().lower() == "bytes" if ranges is None else ranges
    return ObjectMeta(
        size=size,
        etag=h.get("ETag"),
        last_modified=h.get("Last-Modified"),
        content_encoding=h.get("Content-Encoding"),
        content_type=h.get("Content-Type"),
        accept_ranges=accept,
    )
