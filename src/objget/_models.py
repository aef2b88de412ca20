"""Values passed between the layers: object metadata, byte ranges, progress, results.

`Progress` lives in `_progress.py` (still importable from here): only a download with a
listener (a progress bar, a callback) makes one, and a frozen dataclass costs its class and
six compiled methods at import (~2.5 M instructions of a quiet 8 MiB download's run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._progress import Progress

__all__ = ["ByteRange", "DownloadResult", "ObjectMeta", "Progress"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, order=True)
class ByteRange:
    """A half-open byte range `[start, stop)`. Only `_ranges.py` writes the inclusive form."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop:
            raise ValueError(f"invalid byte range [{self.start}, {self.stop})")

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectMeta:
    """What the store said about an object, from HEAD (or a probing GET).

    `size` is None only when the server sent no length (then the download is one stream).
    `checksums` maps an algorithm name (`crc64ecma`, `crc32c`, `crc32`, `crc64nvme`, `md5`)
    to the store's value in the store's own text form. `accept_ranges` is False when the server
    did not advertise byte ranges: then objget downloads in one stream and cannot resume.
    """

    size: int | None
    etag: str | None = None
    last_modified: str | None = None
    version_id: str | None = None
    content_encoding: str | None = None
    content_type: str | None = None
    checksums: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    accept_ranges: bool = True

    @property
    def strong_etag(self) -> str | None:
        """The ETag when it is a strong validator (usable in If-Match), else None."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return None

    def identity(self) -> dict[str, str | int | None]:
        """The fields that must match for a checkpoint to be resumed (across two sources,
        the ETag must be strong and Last-Modified known as well: `_recover.other_source`)."""
        return {
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "version_id": self.version_id,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadResult:
    """What one finished download did.

    `verified` lists what was checked (`size` always, then e.g. `crc64ecma`, `sha256`);
    `checksums` maps each verified checksum to its value in the form the store sent it (OSS
    decimal CRC-64, S3 base64, `B64-N` for a COMPOSITE one) or the user gave it (hex);
    `restarted` says why an earlier checkpoint was discarded, if one was; `resumed_from`
    names the source an earlier checkpoint was made with when this run resumed it from
    another one (a mirror, another endpoint, a URL signed again: the same object by size,
    strong ETag and Last-Modified), redacted like `source`; `skipped` is True when
    `skip_existing` found the destination already up to date and nothing was fetched.
    """

    path: str
    source: str
    size: int
    etag: str | None
    version_id: str | None
    verified: tuple[str, ...]
    bytes_fetched: int
    bytes_resumed: int
    elapsed: float
    retries: int
    resumable: bool = True
    restarted: str | None = None
    resumed_from: str | None = None
    workers: int = 1
    skipped: bool = False
    checksums: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the CLI's `--json` output)."""
        return {
            "path": self.path,
            "source": self.source,
            "size": self.size,
            "etag": self.etag,
            "version_id": self.version_id,
            "verified": list(self.verified),
            "checksums": dict(self.checksums),
            "bytes_fetched": self.bytes_fetched,
            "bytes_resumed": self.bytes_resumed,
            "elapsed": round(self.elapsed, 6),
            "retries": self.retries,
            "resumable": self.resumable,
            "restarted": self.restarted,
            "resumed_from": self.resumed_from,
            "workers": self.workers,
            "skipped": self.skipped,
        }


if not TYPE_CHECKING:  # mypy sees the import above

    def __getattr__(name: str) -> object:
        if name == "Progress":  # defined at its first use
            from ._progress import Progress

            return Progress
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
