"""What a batch fetches: prefixes listed page by page, manifest files, explicit items — each
object mapped to a safe relative destination, filtered by include/exclude globs.

Listing failures that are retryable resume from the last key seen (`start_after`), under the
download retry policy; a final error (403 on the bucket, no such bucket) stops the batch.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ._attempts import Attempts, iter_with_retry
from ._batch_models import BatchItem, ObjectResult, UnsafePath
from ._batch_paths import (
    is_directory_marker,
    refuse_collisions,
    relative_path,
    relative_to_prefix,
)
from ._config import RetryPolicy
from ._exceptions import TransportError
from .backends import BackendOptions, Resolved, Transport, resolve
from .backends._base import Backend, Lister

__all__ = ["Planned", "Sources", "plan", "read_manifest"]

log = logging.getLogger("objget")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_PLACEHOLDER_KEY = "objget-listing"


@dataclass(frozen=True, kw_only=True, slots=True)
class Planned:
    """One object the batch will consider: where from, where to, and what the listing said
    (size, ETag and LastModified; None for manifest entries until a HEAD tells)."""

    source: str
    rel: str
    backend: Backend
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sha256: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Sources:
    prefixes: tuple[str, ...] = ()
    items: tuple[BatchItem, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class _Lister(Protocol):
    def __call__(self, prefix: str, *, start_after: str | None = None) -> Iterator[Any]: ...


def read_manifest(path: str | os.PathLike[str]) -> list[BatchItem]:
    """A manifest: one source URL per line, or one JSON object per line with `source` and
    optional `dest`, `sha256` (hex), `version_id`. Blank lines and `#` comments are skipped.
    ValueError naming the line for anything else."""
    items: list[BatchItem] = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{os.fspath(path)}, line {number}"
            if not line.startswith("{"):
                items.append(BatchItem(source=line))
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("source"), str):
                raise ValueError(f"{where}: a JSON line needs a string 'source'")
            unknown = set(obj) - {"source", "dest", "sha256", "version_id"}
            if unknown:
                raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
            for name in ("dest", "sha256", "version_id"):
                if obj.get(name) is not None and not isinstance(obj[name], str):
                    raise ValueError(f"{where}: '{name}' must be a string")
            sha = obj.get("sha256")
            if sha is not None and not _HEX64.match(sha):
                raise ValueError(f"{where}: 'sha256' must be 64 hex digits")
            items.append(
                BatchItem(
                    source=obj["source"],
                    dest=obj.get("dest"),
                    sha256=sha.lower() if sha else None,
                    version_id=obj.get("version_id"),
                )
            )
    return items


def split_prefix(url: str) -> tuple[str, str, str]:
    """`s3://bucket/some/prefix` → ("s3", "bucket", "some/prefix")."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("s3", "oss"):
        raise ValueError(
            f"{url!r} cannot be listed: only s3:// and oss:// prefixes can (put HTTP(S) URLs in "
            "a manifest)"
        )
    bucket, _, prefix = url[len(scheme) + 3 :].partition("/")
    if not bucket:
        raise ValueError(f"{url!r}: no bucket")
    return scheme, bucket, prefix


def _default_dest(item: BatchItem, found: Resolved) -> str:
    """A manifest entry without `dest`: the object key (s3/oss) or the URL path (http)."""
    if urlsplit(item.source).scheme.lower() in ("s3", "oss"):
        return found.key
    return unquote(urlsplit(item.source).path).lstrip("/")


def list_with_retry(
    lister: _Lister, prefix: str, policy: RetryPolicy
) -> Iterator[tuple[str, int, str | None, str | None]]:
    """The listing, resumed after the last key seen when a page fails retryably."""
    last: str | None = None

    def listing(attempts: Attempts) -> Iterator[tuple[str, int, str | None, str | None]]:
        nonlocal last
        for obj in lister(prefix, start_after=last):
            if last is not None and obj[0] <= last:
                continue
            last = obj[0]
            attempts.progressed()
            yield obj[0], obj[1], obj[2], (obj[3] if len(obj) > 3 else None)

    def say(exc: TransportError, delay: float) -> None:
        log.info("listing %s failed (%s); resuming after %r in %.2f s", prefix, exc, last, delay)

    return iter_with_retry(listing, policy=policy, on_retry=say)


def plan(
    sources: Sources,
    *,
    transport: Transport,
    options: BackendOptions,
    cache: dict[tuple[str, str], Backend],
    policy: RetryPolicy,
) -> tuple[list[Planned], list[ObjectResult]]:
    """Everything the batch considers, and the objects refused up front (unsafe paths)."""
    candidates: list[Planned] = []
    refused: list[ObjectResult] = []

    def wanted(rel: str) -> bool:
        if sources.include and not any(fnmatch.fnmatchcase(rel, p) for p in sources.include):
            return False
        return not any(fnmatch.fnmatchcase(rel, p) for p in sources.exclude)

    def refuse(source: str, exc: Exception) -> None:
        message = f"{source}: refused: {exc}"
        refused.append(
            ObjectResult(
                source=source, path=None, status="failed", error=message, error_kind="unsafe-path"
            )
        )

    for url in sources.prefixes:
        scheme, bucket, prefix = split_prefix(url)
        found = resolve(f"{scheme}://{bucket}/{_PLACEHOLDER_KEY}", transport, options, cache)
        if not isinstance(found.backend, Lister):
            raise ValueError(f"{url!r}: this store cannot list objects")
        lister = found.backend.list_objects
        for key, size, etag, modified in list_with_retry(lister, prefix, policy):
            source = found.backend.display(key)
            if is_directory_marker(key, size):
                continue
            try:
                rel = relative_to_prefix(key, prefix)
                if not wanted(rel):
                    continue
                relative_path(rel)
            except UnsafePath as exc:
                refuse(source, exc)
                continue
            candidates.append(
                Planned(
                    source=source,
                    rel=rel,
                    backend=found.backend,
                    key=key,
                    size=size,
                    etag=etag,
                    last_modified=modified,
                )
            )
    for item in sources.items:
        found = resolve(item.source, transport, options, cache)
        source = found.backend.display(found.key)
        try:
            rel = relative_path(item.dest if item.dest is not None else _default_dest(item, found))
        except UnsafePath as exc:
            refuse(source, exc)
            continue
        if not wanted(rel):
            continue
        candidates.append(
            Planned(
                source=source,
                rel=rel,
                backend=found.backend,
                key=found.key,
                version_id=item.version_id or found.version_id,
                sha256=item.sha256,
            )
        )
    collisions = refuse_collisions(p.rel for p in candidates)
    planned: list[Planned] = []
    first: set[str] = set()
    for p in candidates:
        reason = collisions.get(p.rel)
        if reason is not None and not (reason.startswith("another") and p.rel not in first):
            refuse(p.source, UnsafePath(f"{p.rel!r}: {reason}"))
            continue
        first.add(p.rel)
        planned.append(p)
    return planned, refused


def as_items(entries: Iterable[str | BatchItem]) -> tuple[tuple[str, ...], tuple[BatchItem, ...]]:
    """Split `download_many`'s sources into prefixes (strings) and items."""
    prefixes: list[str] = []
    items: list[BatchItem] = []
    for entry in entries:
        if isinstance(entry, BatchItem):
            items.append(entry)
        else:
            prefixes.append(entry)
    return tuple(prefixes), tuple(items)


def seq(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
