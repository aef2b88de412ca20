"""The single-request mode for a run of many small objects, as a batch's worker sends them.

What makes thousands of 64 KiB objects cheap, kept in one place: DEST's lock handed from one
object to the next without creating a file (`HeldLock`, which a worker may keep from one group
to the next); each directory opened once, without following symlinks (`OpenDirs`), and fsynced
once for all the renames into it; one read buffer reused for every object; and the files made
durable several at a time: up to SYNC_MOST objects of one directory are written and checked,
then made durable together (`_syncfs.sync_files`: one `syncfs` where that is as strong, else an
fsync each), and only then renamed onto their destinations, each under its own DEST lock, held
from before its temp file was made until after its rename (a worker holds up to SYNC_MOST locks,
each handed on to the object in the same place of the next run of objects).

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
from ._fileio import commit_part, unlink_at
from ._held_lock import HeldLock
from ._single import NotSmall, Pending, fetch_small
from ._syncfs import group_sync_ok, sync_files
from ._throttle import BoundLimiter

__all__ = ["SYNC_MOST", "HeldLock", "SmallGroup"]

SYNC_MOST = 8  # small objects made durable together (and DEST locks a worker holds) at most


class SmallGroup:
    """A worker's run of small objects below `maker.root`, each through `fetch_small`: locks
    handed on, the files made durable SYNC_MOST at a time (`sync` False: one fsync each, as
    they are written) and renamed then, each directory fsynced once when the group closes,
    one buffer (`buf`). After the close, `unsynced(rel)` is the error that kept `rel` from
    being durably in place (its sync, its rename or its directory's fsync), else None. Use as
    a context manager; one thread only.

    `held`: the caller's spare locks, shared by its groups in any threads (list operations are
    atomic): a group borrows up to SYNC_MOST of them when it starts, makes more as it needs
    them, and gives them all back, still held, when it closes (no lock file made per group;
    they name the last objects of the group until then); the caller releases them when every
    group is done. None: the group makes its own and releases them when it closes."""

    def __init__(
        self,
        maker: ParentMaker,
        *,
        buf: memoryview,
        config: DownloadConfig,
        limiter: BoundLimiter | None,
        held: list[HeldLock] | None = None,
        sync: bool = True,
    ) -> None:
        self._maker, self._buf, self._config, self._limiter = maker, buf, config, limiter
        self._dirs = OpenDirs(maker)
        self._spare = held  # the caller's (None: our locks are ours to release)
        self._held: list[HeldLock] = []
        while held and len(self._held) < SYNC_MOST:
            try:
                self._held.append(held.pop())
            except IndexError:  # another thread's group took the last one meanwhile
                break
        self._most = SYNC_MOST if sync else 1  # objects held unsynced at most
        self._asked = not sync  # whether `_most` was fitted to the filesystem yet
        self._pending: list[Pending] = []  # written and checked, in `_where`, not yet synced
        self._rels: list[str] = []  # ... and their paths below the root
        self._where: str | None = None  # the directory of the pending objects
        # per lock: the directory of the last object it was taken for, if that succeeded and
        # no other directory was written since (so the descriptor is the one it was taken in)
        self._last: list[str | None] = []
        self._renamed: set[str] = set()
        self._errors: dict[str, Exception] = {}  # rel -> why its sync or rename failed
        self._failed: dict[str, OSError] = {}

    def fetch(
        self, backend: Backend, key: str, rel: str, *, meta: ObjectMeta, sha256: str | None,
        display: str | None = None, dest: str | None = None,
    ) -> DownloadResult:  # fmt: skip
        """`fetch_small` of `key` to `rel` (below the root, its parents made already): written
        and checked now, made durable and renamed with the next objects (at the latest when
        the group closes; `unsynced` says if that failed). NotSmall (that DEST's lock
        released: the ranged mode takes it itself) as `fetch_small` says. `display`:
        `backend.display(key)`, and `dest`: `rel`'s path (`maker.path(rel)`), when the caller
        has them."""
        parent = rel.rpartition("/")[0]
        if self._pending and (parent != self._where or len(self._pending) >= self._most):
            self._flush()
        if parent != self._where:
            self._last = [None] * len(self._last)  # ask the directory again (fstat)
        if not self._asked:
            # one sync for several files only where one syncfs may stand for their fsyncs:
            # else each is synced on its own as it comes, with no more locks held than one
            self._asked = True
            if not group_sync_ok(self._dirs.fd(parent)):
                self._most = 1
        slot = len(self._pending)
        while len(self._held) <= slot:
            self._held.append(HeldLock())
        while len(self._last) <= slot:
            self._last.append(None)
        held = self._held[slot]
        same, self._last[slot] = parent == self._last[slot], None
        defer: list[Pending] = []
        try:
            result = fetch_small(
                backend, key, dest or os.path.join(self._maker.root, rel),
                dir_fd=self._dirs.fd(parent),
                meta=meta, sha256=sha256, config=self._config, buf=self._buf,
                listed=self._maker.listed(rel), sync_dir=False, held=held, same_dir=same,
                limiter=self._limiter, display=display, defer=defer,
            )  # fmt: skip
        except NotSmall:
            held.release()
            raise
        self._last[slot] = parent
        self._where = parent
        self._pending.extend(defer)
        self._rels.append(rel)
        return result

    def _flush(self) -> None:
        """The pending objects made durable (one sync for all), then renamed onto their
        destinations (each still under its lock); their directory is fsynced when it closes."""
        pending, rels, self._pending, self._rels = self._pending, self._rels, [], []
        if not pending:
            return
        parent = self._where or ""
        dir_fd = self._dirs.fd(parent)
        try:
            try:
                if not sync_files(dir_fd, [p.fd for p in pending]):
                    self._most = 1  # the rest of the group: no more locks than one
            except OSError as exc:  # none of them is known to be on the disk
                for p, rel in zip(pending, rels, strict=True):
                    self._errors[rel] = exc
                    unlink_at(dir_fd, os.path.basename(p.part))
                return
            for p, rel in zip(pending, rels, strict=True):
                try:
                    commit_part(p.part, p.dest, p.made, display=p.display, dir_fd=dir_fd)
                except (DownloadError, OSError) as exc:
                    self._errors[rel] = exc
                    continue
                self._dirs.renamed(parent)
                self._renamed.add(rel)
        finally:
            for p in pending:
                os.close(p.fd)

    def _discard(self) -> None:
        """After an error that ends the group: the pending temp files removed, not renamed."""
        pending, self._pending, self._rels = self._pending, [], []
        dir_fd = self._dirs.fd(self._where or "") if pending else -1
        for p in pending:
            os.close(p.fd)
            unlink_at(dir_fd, os.path.basename(p.part))

    def unsynced(self, rel: str) -> Exception | None:
        if rel in self._errors:
            return self._errors[rel]
        return self._failed.get(rel.rpartition("/")[0]) if rel in self._renamed else None

    def __enter__(self) -> SmallGroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            try:
                if kind is None:
                    self._flush()
                else:
                    self._discard()
            finally:
                if self._spare is not None:
                    self._spare.extend(self._held)
                else:
                    for held in self._held:
                        held.release()
        finally:
            self._failed = self._dirs.close()
