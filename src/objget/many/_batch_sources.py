"""What a batch fetches: prefixes listed page by page, manifest files, explicit items — each
object mapped to a safe relative destination, filtered by include/exclude globs.

Listing failures that are retryable resume from the last key seen (`start_after`), under the
download retry policy; a final error (403 on the bucket, no such bucket) stops the batch.

Keys → file paths under the destination directory refuse anything unsafe: no key can make
objget write outside it — not through `..`, not through an absolute path (and, on the disk,
not through a symlink: the engine's `ParentMaker` walks every parent with `O_NOFOLLOW`). A
key with a path component that carries objget's side-file marker (`.objget-`, any letter
case: `_fileio.carries_marker`, the rule a single download's DEST is held to) is refused: its
file would be taken for, removed or overwritten as another object's side file (and a
directory of such a name would stand where one must be created).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .._config import RetryPolicy
from .._exceptions import UnsafePath
from ..backends import BackendOptions, Transport, resolve, resolve_prefix
from ..backends._base import Backend, Lister
from ..engine._downloader import MARKER, carries_marker  # the one rule: DEST's too
from ..engine._engine_face import list_with_retry
from ._batch_models import BatchItem, ObjectResult, failed

__all__ = [
    "Collisions",
    "Listed",
    "Planned",
    "Sources",
    "is_directory_marker",
    "plan_stream",
    "read_manifest",
    "relative_path",
    "relative_to_prefix",
]

_NAME_MAX = 255


@dataclass(frozen=True, kw_only=True, slots=True)
class Listed:
    """One object the batch will consider: where from, where to, and what the listing said
    (size, ETag and LastModified; None for manifest entries until a HEAD tells). Picklable:
    what a Ray group task is sent (each worker resolves its own backend)."""

    source: str
    rel: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sha256: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Planned(Listed):
    """A listed object with the backend that fetches it, and its key there."""

    backend: Backend
    key: str

    def listed(self) -> Listed:
        return Listed(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Listed)})


@dataclass(frozen=True, kw_only=True, slots=True)
class Sources:
    prefixes: tuple[str, ...] = ()
    items: tuple[BatchItem, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


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
            import json  # only for a JSON line: not loaded by a --recursive run

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
            if sha is not None and not re.match(r"^[0-9a-fA-F]{64}$", sha):  # compiled at first use
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


def is_directory_marker(key: str, size: int | None) -> bool:
    """An empty object whose key ends in `/`: a console-made "folder", nothing to write."""
    return key.endswith("/") and size == 0


def relative_to_prefix(key: str, prefix: str) -> str:
    """The part of `key` below the last `/` of `prefix` (`p/a/` + `p/a/x/y` → `x/y`;
    `p/da` + `p/data/x` → `data/x`). UnsafePath when the store listed a key outside it."""
    if not key.startswith(prefix):
        raise UnsafePath(f"the store listed {key!r}, which is not under the prefix {prefix!r}")
    base = prefix[: prefix.rfind("/") + 1]
    return key[len(base) :]


def relative_path(rel: str) -> str:
    """`rel` itself when it is a safe relative file path; UnsafePath saying why otherwise."""
    if not rel:
        raise UnsafePath("the key gives an empty file name")
    if "\x00" in rel:
        raise UnsafePath("the key contains a NUL character")
    if rel.startswith("/"):
        raise UnsafePath("the key maps to an absolute path")
    if rel.endswith("/"):
        raise UnsafePath("the key ends in '/' but the object is not empty")
    parts = rel.split("/")
    for part in parts:
        if part == "..":
            raise UnsafePath("the key contains a '..' path component (outside the directory)")
        if part in ("", "."):
            raise UnsafePath("the key contains an empty or '.' path component")
        if len(part.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise UnsafePath(f"a path component is longer than {_NAME_MAX} bytes")
        if carries_marker(part):
            raise UnsafePath(
                f"the name {part!r} contains {MARKER!r}, the marker of objget's own side files "
                "(temp data, checkpoints, locks, the batch journal)"
            )
    return rel


def _candidates(
    sources: Sources, transport: Transport, options: BackendOptions, policy: RetryPolicy
) -> Iterator[Planned | ObjectResult | None]:
    """Every object the sources name, mapped and filtered, in listing order, as the listing
    delivers it (page by page); an ObjectResult for one refused for its own name (unsafe);
    None after each prefix's listing ends. Collisions between names are not checked here."""

    def wanted(rel: str) -> bool:
        if sources.include and not any(fnmatch.fnmatchcase(rel, p) for p in sources.include):
            return False
        return not any(fnmatch.fnmatchcase(rel, p) for p in sources.exclude)

    cache: dict[tuple[str, str], Backend] = {}  # one backend per store
    for url in sources.prefixes:
        found = resolve_prefix(url, transport, options, cache)
        prefix = found.key
        assert isinstance(found.backend, Lister)  # resolve_prefix's promise
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
                yield _refused(source, exc)
                continue
            yield Planned(
                source=source,
                rel=rel,
                backend=found.backend,
                key=key,
                size=size,
                etag=etag,
                last_modified=modified,
            )
        yield None
    for item in sources.items:
        found = resolve(item.source, transport, options, cache)
        source = found.backend.display(found.key)
        try:
            rel = relative_path(item.dest if item.dest is not None else found.path)
        except UnsafePath as exc:
            yield _refused(source, exc)
            continue
        if not wanted(rel):
            continue
        yield Planned(
            source=source,
            rel=rel,
            backend=found.backend,
            key=found.key,
            version_id=item.version_id or found.version_id,
            sha256=item.sha256,
        )


def _refused(source: str, exc: Exception) -> ObjectResult:
    return failed(source, None, UnsafePath(f"refused: {exc}"))


class Collisions:
    """The collision rule, applied as the listing streams in: a repeated destination is
    refused (all but the first), and so is a file another key needs as a directory (`a` when
    `a/b` exists). A listing comes in key order, so an object is held back only until the
    listing has passed the names below it (`a` until a key after every `a/...`); at the end
    of each prefix everything held is let go. A later source (another prefix, a manifest
    entry) that needs a file let go already as a directory is the one refused then."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._dirs: dict[str, str] = {}  # directory -> the first rel that needs it
        self._held: list[Planned] = []

    def add(self, p: Planned) -> list[Planned | ObjectResult]:
        """`p` arrived: what is decided now (objects let go, objects refused)."""
        out: list[Planned | ObjectResult] = []
        parts = p.rel.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if p.rel in self._seen:
            why = "another object in this batch has the same destination"
        elif p.rel in self._dirs:
            why = f"it collides with a directory that {self._dirs[p.rel]!r} needs"
        else:
            why = next(
                (f"{d!r} is a file in this batch" for d in parents if d in self._seen
                 and not any(h.rel == d for h in self._held)),
                "",
            )  # fmt: skip
        if why:
            out.append(_refused(p.source, UnsafePath(f"{p.rel!r}: {why}")))
            out.extend(self._release(p.rel))
            return out
        self._seen.add(p.rel)
        for d in parents:
            self._dirs.setdefault(d, p.rel)
        keep: list[Planned] = []
        for h in self._held:
            if h.rel in self._dirs:  # needed as a directory now
                why = f"it collides with a directory that {self._dirs[h.rel]!r} needs"
                out.append(_refused(h.source, UnsafePath(f"{h.rel!r}: {why}")))
                self._seen.discard(h.rel)  # a later key below it is no collision now
            else:
                keep.append(h)
        self._held = keep
        out.extend(self._release(p.rel))
        self._held.append(p)
        return out

    def _release(self, rel: str) -> list[Planned | ObjectResult]:
        """The held objects no later key of a sorted listing can need as a directory."""
        out: list[Planned | ObjectResult] = []
        keep: list[Planned] = []
        for h in self._held:
            below = h.rel + "/"
            if rel > below and not rel.startswith(below):
                out.append(h)
            else:
                keep.append(h)
        self._held = keep
        return out

    def flush(self) -> list[Planned | ObjectResult]:
        out: list[Planned | ObjectResult] = list(self._held)
        self._held = []
        return out


def plan_stream(
    sources: Sources, *, transport: Transport, options: BackendOptions, policy: RetryPolicy
) -> Iterator[Planned | ObjectResult]:
    """Everything the batch considers, and the objects refused (unsafe paths, collisions), as
    the listing arrives: each object once its name is decided (see `Collisions`), so
    downloads can start before the listing ends."""
    rule = Collisions()
    for c in _candidates(sources, transport, options, policy):
        if c is None:
            yield from rule.flush()
        elif isinstance(c, ObjectResult):
            yield c
        else:
            yield from rule.add(c)
    yield from rule.flush()
