"""Backends: one small object per store, behind the `Backend` Protocol.

Public here: the Protocols of the backend contract (`Backend`, `RangeBody`, and the
capabilities only some stores have: `Lister`, `PartLayout`, `AnswerChecksums`, `Abortable`),
the description of an object's checks (`ObjectChecks`, `Checksummer`) and `BackendOptions`.
Everything else is objget's own: `resolve(source, transport)` picks the backend for a URL and
returns it with the key it uses; `resolve_prefix` does so for a prefix to list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._base import ObjectChecks
from ._headers import check_headers
from ._options import BackendOptions
from ._target import scheme as url_scheme
from ._transport import ResponseBody as ResponseBody  # objget's own use; not in __all__
from ._transport import Transport as Transport  # objget's own use; not in __all__
from ._transport import redact_url
from .http import HttpBackend

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Protocol

    from ..integrity.checks import Checksummer
    from ._protocols import Abortable, AnswerChecksums, Backend, Lister, PartLayout, RangeBody

__all__ = [
    "Abortable",
    "AnswerChecksums",
    "Backend",
    "BackendOptions",
    "Checksummer",
    "Lister",
    "ObjectChecks",
    "PartLayout",
    "RangeBody",
]


def backend_key(source: str) -> tuple[str, str]:
    """What identifies the backend object a source needs (scheme, bucket or host), so a
    Downloader can reuse one per store."""
    from urllib.parse import urlsplit

    parts = urlsplit(source)
    return parts.scheme.lower(), parts.netloc


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class Resolved:
    """A source URL turned into the backend to ask, its key, and the version it names."""

    backend: Backend
    key: str
    version_id: str | None = None

    @property
    def path(self) -> str:
        """The object's path in its store: the key (s3/oss), the URL's path (http)."""
        if isinstance(self.backend, HttpBackend):
            from urllib.parse import unquote, urlsplit

            return unquote(urlsplit(self.key).path).lstrip("/")
        return self.key


Cache = dict[tuple[str, str], "Backend"]


def resolve(
    source: str,
    transport: Transport,
    options: BackendOptions | None = None,
    cache: Cache | None = None,
) -> Resolved:
    """The backend for `source` (reused from `cache` when one serves the same store)."""
    options = options or BackendOptions()
    cache = {} if cache is None else cache
    scheme = url_scheme(source)  # urlsplit's, without importing urllib.parse for a plain URL
    if scheme in ("http", "https"):
        backend = cache.get(("http", "")) or HttpBackend(
            transport, headers=check_headers(options.headers)
        )
        cache[("http", "")] = backend
        return Resolved(backend=backend, key=source)
    if scheme not in ("oss", "s3"):
        raise ValueError(
            f"unsupported source {redact_url(source)!r}: expected an http://, https://, oss:// "
            "or s3:// URL"
        )
    if options.headers:
        raise ValueError(
            f"extra headers (--header) apply to http(s):// sources only, not {scheme}:// "
            "(its requests are signed)"
        )
    loc, open_bucket = _signed_store(scheme, source)
    store = cache.get((scheme, loc.bucket))
    if store is None:
        store = cache[(scheme, loc.bucket)] = open_bucket(loc.bucket, transport, options)
    return Resolved(backend=store, key=loc.key, version_id=loc.version_id)


def resolve_prefix(
    url: str, transport: Transport, options: BackendOptions, cache: Cache | None = None
) -> Resolved:
    """`s3://bucket/some/prefix` (or `oss://`): the bucket's backend and, as the key, the
    prefix to list; ValueError for a URL no store can list."""
    scheme = url_scheme(url)
    if scheme not in ("s3", "oss"):
        raise ValueError(
            f"{url!r} cannot be listed: only s3:// and oss:// prefixes can (put HTTP(S) URLs in "
            "a manifest)"
        )
    bucket, _, prefix = url[len(scheme) + 3 :].partition("/")
    if not bucket:
        raise ValueError(f"{url!r}: no bucket")
    # the bucket's backend, as an object URL of it names it (any key: none is requested)
    found = resolve(f"{scheme}://{bucket}/objget-listing", transport, options, cache)
    from ._protocols import Lister  # (and typing) for a listing only

    if not isinstance(found.backend, Lister):
        raise ValueError(f"{url!r}: this store cannot list objects")
    return Resolved(backend=found.backend, key=prefix)


if TYPE_CHECKING:  # a Protocol for the type checker only

    class _Location(Protocol):
        """An `oss://` or `s3://` URL split up."""

        @property
        def bucket(self) -> str: ...
        @property
        def key(self) -> str: ...
        @property
        def version_id(self) -> str | None: ...


_Opener = Callable[[str, Transport, BackendOptions], "Backend"]


def _signed_store(scheme: str, source: str) -> tuple[_Location, _Opener]:
    """The parsed URL and the maker of a bucket's backend; each store's modules load only for
    a URL of it."""
    if scheme == "oss":
        from ._oss_setup import parse_oss_url
        from .oss import open_oss

        return parse_oss_url(source), open_oss
    from ._s3_urls import parse_s3_url
    from .s3 import open_s3

    return parse_s3_url(source), open_s3


_PUBLIC_PROTOCOLS = frozenset(
    {"Abortable", "AnswerChecksums", "Backend", "Checksummer", "Lister", "PartLayout", "RangeBody"}
)

if not TYPE_CHECKING:  # mypy sees the imports above

    def __getattr__(name: str) -> object:
        if name in _PUBLIC_PROTOCOLS:  # defined (and typing imported) at first access
            from . import _base

            return getattr(_base, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
