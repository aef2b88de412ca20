"""The single-request mode for a run of many small objects, as a batch's worker sends them.

What makes thousands of 64 KiB objects cheap, kept in one place: one file per object, DEST's
lock file, which is the temp file too (`_lock_temp`: its rename onto DEST takes the lock's
name away, so there is no lock file to make, hand on or remove besides); each directory opened
once, without following symlinks (`OpenDirs`), and fsynced once for all the renames into it;
one read buffer reused for every object; and the files made durable several at a time: up to
SYNC_MOST objects of one directory are written and checked, then made durable together
(`_syncfs.sync_files`: one `syncfs` where that is as strong, else an fsync each), and only then
renamed onto their destinations, each under its own DEST lock, held from before its first byte
was written until after its rename (a worker holds up to SYNC_MOST locks).

A rename is durable only after its directory's fsync: `unsynced(rel)` tells the caller which
objects' sync, rename or directory fsync failed, so it never records them as done.
"""

from __future__ import annotations

import os

from .._config import DownloadConfig
from .._exceptions import DownloadError
from .._models import DownloadResult, ObjectMeta
from ..backends._base import Backend
from ._dirs import OpenDirs, ParentMaker
from ._lock_temp import commit_lock_temp, give_up
from ._single import Pending, fetch_small
from ._syncfs import group_sync_ok, sync_files
from ._throttle import BoundLimiter

__all__ = ["SYNC_MOST", "SmallGroup"]

SYNC_MOST = 8  # small objects made durable together (and DEST locks a worker holds) at most


class SmallGroup:
    """A worker's run of small objects below `maker.root`, each through `fetch_small`: the
    files made durable SYNC_MOST at a time (`sync` False: one fsync each, as they are
    written) and renamed then, each directory fsynced once when the group closes, one buffer
    (`buf`). After the close, `unsynced(rel)` is the error that kept `rel` from being durably
    in place (its sync, its rename or its directory's fsync), else None. Use as a context
    manager; one thread only."""

    def __init__(
        self,
        maker: ParentMaker,
        *,
        buf: memoryview,
        config: DownloadConfig,
        limiter: BoundLimiter | None,
        sync: bool = True,
    ) -> None:
        self._maker, self._buf, self._config, self._limiter = maker, buf, config, limiter
        self._dirs = OpenDirs(maker)
        self._most = SYNC_MOST if sync else 1  # objects held unsynced at most
        self._asked = not sync  # whether `_most` was fitted to the filesystem yet
        self._pending: list[Pending] = []  # written and checked, in `_where`, not yet synced
        self._rels: list[str] = []  # ... and their paths below the root
        self._where: str | None = None  # the directory of the pending objects
        self._renamed: set[str] = set()
        self._errors: dict[str, Exception] = {}  # rel -> why its sync or rename failed
        self._failed: dict[str, OSError] = {}

    def fetch(
        self, backend: Backend, key: str, rel: str, *, meta: ObjectMeta, sha256: str | None,
        display: str | None = None, dest: str | None = None,
    ) -> DownloadResult:  # fmt: skip
        """`fetch_small` of `key` to `rel` (below the root, its parents made already): written
        and checked now, made durable and renamed with the next objects (at the latest when
        the group closes; `unsynced` says if that failed). NotSmall (that DEST's lock let
        go of: the ranged mode takes it itself) as `fetch_small` says. `display`:
        `backend.display(key)`, and `dest`: `rel`'s path (`maker.path(rel)`), when the caller
        has them."""
        parent = rel.rpartition("/")[0]
        if self._pending and (parent != self._where or len(self._pending) >= self._most):
            self._flush()
        if not self._asked:
            # one sync for several files only where one syncfs may stand for their fsyncs:
            # else each is synced on its own as it comes, with no more locks held than one
            self._asked = True
            if not group_sync_ok(self._dirs.fd(parent)):
                self._most = 1
        defer: list[Pending] = []
        result = fetch_small(
            backend, key, dest or os.path.join(self._maker.root, rel),
            dir_fd=self._dirs.fd(parent),
            meta=meta, sha256=sha256, config=self._config, buf=self._buf,
            listed=self._maker.listed(rel), sync_dir=False,
            limiter=self._limiter, display=display, defer=defer,
        )  # fmt: skip
        self._where = parent
        self._pending.extend(defer)
        self._rels.append(rel)
        return result

    def _flush(self) -> None:
        """The pending objects made durable (one sync for all), then renamed onto their
        destinations (each still under its lock, let go of after its rename); their directory
        is fsynced when it closes."""
        pending, rels, self._pending, self._rels = self._pending, self._rels, [], []
        if not pending:
            return
        parent = self._where or ""
        dir_fd = self._dirs.fd(parent)
        try:
            if not sync_files(dir_fd, [p.fd for p in pending]):
                self._most = 1  # the rest of the group: no more locks than one
        except OSError as exc:  # none of them is known to be on the disk
            for rel in rels:
                self._errors[rel] = exc
            _give_up(dir_fd, pending)
            return
        except BaseException:
            _give_up(dir_fd, pending)
            raise
        for i, (p, rel) in enumerate(zip(pending, rels, strict=True)):
            try:
                commit_lock_temp(p.fd, p.lock, p.dest, p.made, display=p.display, dir_fd=dir_fd)
            except (DownloadError, OSError) as exc:
                self._errors[rel] = exc
                continue
            except BaseException:
                _give_up(dir_fd, pending[i + 1 :])
                raise
            self._dirs.renamed(parent)
            self._renamed.add(rel)

    def _discard(self) -> None:
        """After an error that ends the group: the pending lock files removed, not renamed."""
        pending, self._pending, self._rels = self._pending, [], []
        if pending:
            _give_up(self._dirs.fd(self._where or ""), pending)

    def unsynced(self, rel: str) -> Exception | None:
        if rel in self._errors:
            return self._errors[rel]
        return self._failed.get(rel.rpartition("/")[0]) if rel in self._renamed else None

    def __enter__(self) -> SmallGroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                self._flush()
            else:
                self._discard()
        finally:
            self._failed = self._dirs.close()


def _give_up(dir_fd: int, pending: list[Pending]) -> None:
    """The lock files of `pending` removed and let go of (`_lock_temp.give_up`)."""
    for p in pending:
        give_up(dir_fd, os.path.basename(p.lock), p.fd)
