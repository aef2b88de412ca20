"""The backend contract's Protocols (`backends/_base.py` describes them): their own module,
since a Protocol class needs `typing` (~11 M instructions to import), which nothing else on a
plain download's path does. objget's modules name them for the type checker; the engine asks
what an `isinstance` of the runtime-checkable ones would (`_base.is_abortable`,
`part_layout_of`, `answer_checksums_of`); `objget.backends` and `_base` give them to a user at
first access.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._models import ByteRange, ObjectMeta
    from ..integrity.checks import ObjectChecks
    from ._s3_list import ListedObject

__all__ = ["Abortable", "AnswerChecksums", "Backend", "Lister", "PartLayout", "RangeBody"]


class RangeBody(Protocol):
    """An open response body. `readinto` returns 0 at the end of the body.

    `content_range` is the raw `Content-Range` header (None when absent), `content_length`
    the parsed `Content-Length` (None when absent). The engine checks both against what it
    asked for before it writes one byte. `headers` are all of the answer's headers (a store
    may send checksums with them).
    """

    status: int
    content_range: str | None
    content_length: int | None

    @property
    def headers(self) -> Mapping[str, str]: ...

    def readinto(self, buf: memoryview, /) -> int: ...

    def close(self) -> None:
        """Release the connection (to the pool when the body was read to its end)."""


class Backend(Protocol):
    """One store (a host, a bucket); `key` is the backend's own object address.

    `get_range` with `rng=None` asks for the whole object without a Range header (the
    one-stream path for servers that do not do ranges). `meta` is what `head` returned: the
    backend uses its ETag / Last-Modified / version to pin the object (If-Match, If-Range,
    versionId).
    """

    def display(self, key: str) -> str:
        """The source as it may be shown in messages, logs and checkpoints (no secrets)."""

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta: ...

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> RangeBody: ...

    def object_checks(self, meta: ObjectMeta) -> ObjectChecks:
        """Which checks this object offers, with the store's values (empty when none)."""

    def close(self) -> None: ...


@runtime_checkable
class Lister(Protocol):
    """A store that lists the objects under a prefix."""

    def list_objects(
        self, prefix: str, *, start_after: str | None = None
    ) -> Iterator[ListedObject]:
        """Every object under `prefix` as (key, size, etag, last_modified), in key order;
        `start_after` resumes an interrupted listing."""


@runtime_checkable
class PartLayout(Protocol):
    """A store that tells a multipart upload's part sizes (for a COMPOSITE checksum)."""

    def part_sizes(self, key: str, meta: ObjectMeta) -> tuple[int, ...] | None:
        """The part sizes in order, or None when the store does not tell them."""


@runtime_checkable
class AnswerChecksums(Protocol):
    """A store that sends an object's checksums only with a whole-object (not ranged) GET:
    the small-object path asks for the whole object and reads them from the answer."""

    def answer_checksums(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The checksums of a whole-object answer, as `head` would put them in its meta."""


@runtime_checkable
class Abortable(Protocol):
    """A response body whose read in progress can be broken from another thread."""

    def abort(self) -> None: ...
