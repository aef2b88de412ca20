"""Backends: one small object per store, behind the `Backend` Protocol.

`resolve(source, transport)` picks the backend for a URL and returns it with the key it uses.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._base import Backend, Checksummer, RangeBody
from ._transport import Transport, redact_url
from .http import HttpBackend

__all__ = ["Backend", "Checksummer", "HttpBackend", "RangeBody", "Transport", "resolve"]


def resolve(source: str, transport: Transport) -> tuple[Backend, str]:
    """The backend for `source` and the key to pass to it."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return HttpBackend(transport), source
    if scheme in ("oss", "s3"):
        raise ValueError(f"{scheme}:// sources are not supported yet")
    raise ValueError(
        f"unsupported source {redact_url(source)!r}: expected an http://, https://, oss:// or "
        "s3:// URL"
    )
