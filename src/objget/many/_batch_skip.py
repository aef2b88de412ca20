"""Which planned objects a re-run can skip without a request: done in an earlier run with the
same listed identity (size + ETag) and their complete file still in place — or committed by a
run that died before it could journal them (see `_batch_journal.py`) — or already up to date
by the one rule `skip_existing` uses for single downloads (`_sync.up_to_date`: the listed size,
and the listed LastModified as mtime). Batches always apply that rule: a batch in which every
object succeeded removes its journal, so a re-run knows its files by size and mtime alone —
no request for a listed object, one HEAD (never a GET) for a manifest entry whose destination
exists, whose size and date only a HEAD tells (an entry with nothing at its destination cannot
be skipped: its one GET tells them).

A batch into an empty directory has nothing to skip: each destination directory is listed once
(`ParentMaker.names`, the listing the runner then writes by), and an object whose name is not
there is downloaded without an `lstat` of its own (a file that appears there after the listing
is replaced by the object, as one that appears after any skip check would be)."""

from __future__ import annotations

import os

from .._models import ObjectMeta
from ..engine._engine_face import ParentMaker, Paths, drop_stale_lock, file_state, up_to_date
from ._batch_journal import Journal, Row
from ._batch_models import ObjectResult
from ._batch_sources import Planned

__all__ = ["classify", "committed_before_crash", "same_etag", "skip_after_head", "unchanged"]


def same_etag(a: str | None, b: str | None) -> bool:
    """ETags compared as opaque values, ignoring quotes, a weak prefix and hex case."""

    def norm(e: str) -> str:
        return e.strip().removeprefix("W/").strip('"').lower()

    return a is not None and b is not None and norm(a) == norm(b)


def unchanged(row: Row | None, source: str, size: int | None, etag: str | None, dest: str) -> bool:
    """A done row for the same source and identity, and its complete file still in place."""
    if row is None or row.state != "done" or row.source != source or size is None:
        return False
    st = file_state(dest)
    return st is not None and st[2] == size == row.size and same_etag(row.etag, etag)


def skip_after_head(row: Row | None, p: Planned, meta: ObjectMeta, dest: str) -> bool:
    """For an object the listing did not describe (a manifest entry), once HEAD told: done in
    an earlier run with this identity, or up to date by the one rule (with the manifest's
    sha256 when it gives one)."""
    return unchanged(row, p.source, meta.size, meta.etag, dest) or up_to_date(
        dest, size=meta.size, last_modified=meta.last_modified, sha256=p.sha256
    )


def committed_before_crash(row: Row | None, p: Planned, dest: str) -> bool:
    """A `running` row whose download did commit (a new complete file, no temp data) before
    the run died, for the identity the listing still shows."""
    if row is None or row.state != "running" or row.source != p.source or p.size is None:
        return False
    st = file_state(dest)
    if st is None or st[2] != p.size or row.size != p.size or not same_etag(row.etag, p.etag):
        return False
    if os.path.lexists(Paths.beside(dest).part):
        return False
    return row.pre is None or row.pre != (st[0], st[1])


def classify(
    planned: list[Planned], rows: dict[str, Row], root: str, journal: Journal,
    names: ParentMaker | None = None,
) -> tuple[list[Planned], list[ObjectResult]]:  # fmt: skip
    """Split the plan into objects to download and objects skipped without a request (the
    rules above); what a skip learnt is journaled in one commit. `names`: the destination
    directories' listings (kept by the caller from one call to the next)."""
    todo: list[Planned] = []
    skipped: list[ObjectResult] = []
    learnt: list[Row] = []  # journaled in one commit at the end
    write = journal.writable  # not in a dry run
    for p in planned:
        there = names.names(p.rel) if names is not None else None
        if there is not None and p.rel.rpartition("/")[2] not in there:
            todo.append(p)  # nothing there: no rule can skip it
            continue
        row, dest = rows.get(p.rel), os.path.join(root, p.rel)
        if unchanged(row, p.source, p.size, p.etag, dest):
            # a ranged download killed between its rename and its lock's removal left
            # the lock file beside an object journaled done
            lock = os.path.basename(Paths.beside(dest).lock)
            if write and there is not None and lock in there:
                drop_stale_lock(root, p.rel)
        elif committed_before_crash(row, p, dest) or up_to_date(
            dest, size=p.size, last_modified=p.last_modified
        ):
            assert p.size is not None
            if write:
                learnt.append(Row(dest=p.rel, source=p.source, state="done", size=p.size,
                                  etag=p.etag, version_id=p.version_id))  # fmt: skip
                drop_stale_lock(root, p.rel)
        else:
            todo.append(p)
            continue
        skipped.append(
            ObjectResult(source=p.source, path=dest, status="skipped", size=p.size, etag=p.etag)
        )
    if learnt:
        journal.put(learnt)
    return todo, skipped
