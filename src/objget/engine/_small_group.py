"""The single-request mode for a run of many small objects, as a batch's worker sends them.

What makes thousands of 64 KiB objects cheap, kept in one place: DEST's lock handed from one
object to the next without creating a file (`HeldLock`, which a worker may keep from one group
to the next); each directory opened once, without
following symlinks (`OpenDirs`), and fsynced once for all the renames into it; one read buffer
reused for every object. A rename is durable only after its directory's fsync: `unsynced(rel)`
tells the caller which objects' directory fsync failed, so it never records them as done.
"""

from __future__ import annotations

import os

from .._config import DownloadConfig
from .._models import DownloadResult, ObjectMeta
from ..backends._base import Backend
from ._dirs import OpenDirs, ParentMaker
from ._held_lock import HeldLock
from ._single import NotSmall, fetch_small
from ._throttle import BoundLimiter

__all__ = ["HeldLock", "SmallGroup"]


class SmallGroup:
    """A worker's run of small objects below `maker.root`, each through `fetch_small`: one
    lock handed on, each directory fsynced once when the group closes, one buffer (`buf`).
    After the close, `unsynced(rel)` is the OSError of the directory fsync `rel`'s rename
    waited for, else None. Use as a context manager; one thread only.

    `held`: the worker's lock, kept from one group to the next (no lock file made per
    group); the caller releases it when the worker is done (it names the last object of the
    group until then). None: the group takes its own and releases it when it closes."""

    def __init__(
        self,
        maker: ParentMaker,
        *,
        buf: memoryview,
        config: DownloadConfig,
        limiter: BoundLimiter | None,
        held: HeldLock | None = None,
    ) -> None:
        self._maker, self._buf, self._config, self._limiter = maker, buf, config, limiter
        self._dirs = OpenDirs(maker)
        self._own = held is None  # a lock handed in is the caller's to release
        self._held = HeldLock() if held is None else held
        self._last: str | None = None  # the directory of the last object, if it succeeded
        self._renamed: set[str] = set()
        self._failed: dict[str, OSError] = {}

    def fetch(
        self, backend: Backend, key: str, rel: str, *, meta: ObjectMeta, sha256: str | None,
        display: str | None = None,
    ) -> DownloadResult:  # fmt: skip
        """`fetch_small` of `key` to `rel` (below the root, its parents made already). NotSmall
        (DEST's lock released: the ranged mode takes it itself) as `fetch_small` says.
        `display`: `backend.display(key)`, when the caller has it."""
        parent = rel.rpartition("/")[0]
        # the object before went to this directory and succeeded: no directory was opened or
        # closed since, so the descriptor is the one the lock was handed on in
        same, self._last = parent == self._last, None
        try:
            result = fetch_small(
                backend, key, os.path.join(self._maker.root, rel), dir_fd=self._dirs.fd(parent),
                meta=meta, sha256=sha256, config=self._config, buf=self._buf,
                listed=self._maker.listed(rel), sync_dir=False, held=self._held, same_dir=same,
                limiter=self._limiter, display=display,
            )  # fmt: skip
        except NotSmall:
            self._held.release()
            raise
        self._last = parent
        self._dirs.renamed(parent)
        self._renamed.add(rel)
        return result

    def unsynced(self, rel: str) -> OSError | None:
        return self._failed.get(rel.rpartition("/")[0]) if rel in self._renamed else None

    def __enter__(self) -> SmallGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._own:
                self._held.release()
        finally:
            self._failed = self._dirs.close()
