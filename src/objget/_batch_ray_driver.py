"""The Ray driver: groups small objects, splits large ones into range tasks, keeps at most
`max_in_flight` tasks outstanding, journals every object, and commits large objects itself
once all their ranges are in: the spans range tasks resumed from checkpoints are read back
and checked against their CRCs, then the combined CRC and the whole-file checks, then fsync
and rename."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _checkpoint as ck
from ._batch_journal import Journal
from ._batch_models import BatchProgress, ObjectResult
from ._batch_ray import (
    GroupEntry,
    RangeJob,
    RangeOutcome,
    bad_spans,
    meta_to,
    range_paths,
    run_group,
    run_range,
    span_checksummer,
)
from ._batch_sources import Planned
from ._downloader import Downloader, head_with_retry
from ._engine_face import ParentMaker, file_state
from ._exceptions import DownloadError, IntegrityError, UnsafePath
from ._exit import error_kind
from ._fileio import open_part, preallocate, remove_quietly, replace_durably
from ._models import DownloadResult, ObjectMeta
from ._plan import Span, add_span
from ._sync import stamp
from ._verify import checksummer_of, file_checks_of, verify
from .backends._base import Checksummer
from .integrity import DigestCheck, FileCheck

__all__ = ["Driver"]


@dataclass(eq=False)
class _Large:
    planned: Planned
    dest: str
    meta: ObjectMeta
    lock: ck.DestLock
    pending: int
    started: float
    outcomes: list[RangeOutcome] = field(default_factory=list)


class Driver:
    def __init__(
        self,
        ray: Any,
        dl: Downloader,
        root: str,
        journal: Journal,
        *,
        group_size: int,
        group_bytes: int,
        range_size: int,
        task_connections: int,
        max_in_flight: int | None,
        max_retries: int,
        on_progress: Callable[[BatchProgress], None] | None,
        on_result: Callable[[ObjectResult], None],
    ) -> None:
        self._ray = ray
        self._dl = dl
        self._root = root
        self._journal = journal
        self._paths = ParentMaker(root)
        self._group_size = group_size
        self._group_bytes = group_bytes
        self._range_size = range_size
        self._conns = task_connections
        self._limit = max_in_flight
        self._retries = max_retries
        self._on_progress = on_progress
        self._on_result = on_result
        self._planned: dict[str, Planned] = {}
        self._done = self._failed = self._bytes_done = 0
        self._total = self._total_bytes = self._skipped = 0
        self._started = time.monotonic()

    # --- results --------------------------------------------------------------------
    def _finish(self, out: ObjectResult, rel: str) -> None:
        p = self._planned[rel]
        if out.status == "failed":
            self._failed += 1
            self._journal.failed(rel, p.source, kind=out.error_kind or "", error=out.error or "")
        else:
            self._done += 1
            self._bytes_done += out.size or 0
            version = out.result.version_id if out.result is not None else p.version_id
            size = out.size or 0
            self._journal.done(rel, p.source, size=size, etag=out.etag, version_id=version)
        self._on_result(out)

    def _fail(
        self, p: Planned, dest: str | None, exc: BaseException, kind: str | None = None
    ) -> None:
        text = str(exc) if p.source in str(exc) else f"{p.source}: {exc}"
        out = ObjectResult(
            source=p.source, path=dest, status="failed", size=p.size, error=text,
            error_kind=kind or error_kind(exc),
        )  # fmt: skip
        self._finish(out, p.rel)

    def _running(self, p: Planned, dest: str) -> None:
        st = file_state(dest)
        pre = (st[0], st[1]) if st is not None else None
        self._journal.running(p.rel, p.source, size=p.size, etag=p.etag, pre=pre)

    # --- planning -------------------------------------------------------------------
    def _prepare_large(self, p: Planned, dest: str) -> tuple[_Large, list[RangeJob]]:
        meta = head_with_retry(p.backend, p.key, p.version_id, self._dl.config.retry)
        if meta.size is None:
            raise DownloadError(f"{p.source}: the store gave no size", source=p.source)
        lock = ck.DestLock(ck.Paths.beside(dest).lock, dest=dest, source=p.source)
        lock.acquire()
        try:
            part = ck.Paths.beside(dest).part
            st = file_state(part)
            if st is None or st[2] != meta.size:
                for path in _range_files(dest):
                    if path.endswith(".ckpt"):
                        remove_quietly(path)
                fd = open_part(part, fresh=True)
                try:
                    preallocate(fd, meta.size)
                    os.ftruncate(fd, meta.size)
                finally:
                    os.close(fd)
        except BaseException:
            lock.release(remove=True)
            raise
        jobs = [
            RangeJob(
                source=p.source,
                dest=dest,
                start=a,
                stop=min(a + self._range_size, meta.size),
                meta=meta_to(meta),
            )
            for a in range(0, meta.size, self._range_size)
        ]
        big = _Large(planned=p, dest=dest, meta=meta, lock=lock, pending=len(jobs),
                     started=time.monotonic())  # fmt: skip
        return big, jobs

    def _commit_large(self, big: _Large) -> None:
        p, meta = big.planned, big.meta
        try:
            errors = [o for o in big.outcomes if o.error]
            if errors:
                self._fail(p, big.dest, RuntimeError(errors[0].error), errors[0].error_kind)
                return
            backend = p.backend
            checksummer = checksummer_of(backend, meta)
            combine = checksummer.combine if checksummer else None
            spans: list[Span] = []
            for o in sorted(big.outcomes, key=lambda o: o.start):
                for s in o.spans:
                    spans = add_span(spans, s, combine)
            assert meta.size is not None
            paths = ck.Paths.beside(big.dest)
            checks: list[FileCheck] = []
            if p.sha256:
                checks.append(DigestCheck("sha256", p.sha256))
            checks.extend(file_checks_of(backend, p.key, meta, size=meta.size))
            fd = os.open(paths.part, os.O_RDWR | os.O_NOFOLLOW)
            try:
                self._check_resumed(big, fd, span_checksummer(backend, meta))
                checked = verify(
                    fd, spans=tuple(spans), size=meta.size, checksummer=checksummer,
                    checks=checks, display=p.source, discard=lambda: self._discard(big),
                )  # fmt: skip
                stamp(fd, meta.last_modified)  # DEST's mtime = Last-Modified, before the rename
                os.fsync(fd)
            finally:
                os.close(fd)
            replace_durably(paths.part, big.dest)
            self._discard(big)
        except (DownloadError, OSError, ValueError) as exc:
            self._fail(p, big.dest, exc)
            return
        finally:
            big.lock.release(remove=True)
        fetched = sum(o.fetched for o in big.outcomes)
        result = DownloadResult(
            path=big.dest, source=p.source, size=meta.size, etag=meta.etag,
            version_id=meta.version_id, verified=checked.names, checksums=checked.values,
            bytes_fetched=fetched,
            bytes_resumed=max(0, meta.size - fetched), elapsed=time.monotonic() - big.started,
            retries=0, workers=len(big.outcomes),
        )  # fmt: skip
        out = ObjectResult(source=p.source, path=big.dest, status="downloaded", size=meta.size,
                           etag=meta.etag, result=result)  # fmt: skip
        self._finish(out, p.rel)

    def _check_resumed(self, big: _Large, fd: int, crc: Checksummer) -> None:
        """The spans range tasks resumed from checkpoints (not fetched by them) read back from
        the file as their CRCs say, or IntegrityError: their CRCs are what the combined check
        trusts, so a lost write there (a lost node) would otherwise be committed as verified.
        The ranges at fault lose their checkpoints: a new run fetches them again."""
        bad = [(o, s, got) for o in big.outcomes for s, got in bad_spans(fd, o.resumed, crc)]
        if not bad:
            return
        for o, _, _ in bad:
            remove_quietly(range_paths(big.dest, o.start).checkpoint)
        _, span, got = bad[0]
        source = big.planned.source
        raise IntegrityError(
            f"{source}: bytes {span.start}-{span.stop} resumed from a range checkpoint do not "
            f"read back as written ({crc.name}); the object was not committed, and those "
            "ranges are fetched again on the next run",
            algorithm=crc.name, expected=str(span.crc), actual=str(got), source=source,
        )  # fmt: skip

    def _discard(self, big: _Large) -> None:
        for path in _range_files(big.dest):
            remove_quietly(path)
        remove_quietly(ck.Paths.beside(big.dest).part)

    # --- the loop -------------------------------------------------------------------
    def run(self, todo: list[Planned], *, skipped: int) -> None:
        ray = self._ray
        cfg, options = self._dl.config, self._dl.options
        group_fn = ray.remote(num_cpus=1, max_retries=self._retries)(run_group)
        range_fn = ray.remote(num_cpus=1, max_retries=self._retries)(run_range)
        limit = self._limit or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        range_cfg = dataclasses.replace(
            cfg, max_workers=self._conns, min_workers=min(cfg.min_workers, self._conns)
        )
        self._skipped, self._total = skipped, len(todo)
        self._total_bytes = sum(p.size or 0 for p in todo)
        tasks: deque[tuple[Callable[[], Any], object]] = deque()
        group: list[GroupEntry] = []
        group_bytes = 0

        def flush() -> None:
            nonlocal group, group_bytes
            if group:
                entries = group
                submit = functools.partial(group_fn.remote, entries, cfg, options, self._conns)
                tasks.append((submit, entries))
            group, group_bytes = [], 0

        for p in todo:
            self._planned[p.rel] = p
            dest: str | None = None
            try:
                dest = self._paths.path(p.rel)
                if p.size is not None and p.size >= 2 * self._range_size:
                    self._running(p, dest)
                    big, jobs = self._prepare_large(p, dest)
                    for job in jobs:
                        tasks.append(
                            (functools.partial(range_fn.remote, job, range_cfg, options), big)
                        )
                    continue
            except (UnsafePath, DownloadError, OSError) as exc:
                self._fail(p, dest, exc)
                continue
            self._running(p, dest)
            group.append(GroupEntry(source=p.source, dest=dest, version_id=p.version_id,
                                    sha256=p.sha256, size=p.size))  # fmt: skip
            group_bytes += p.size or 0
            if len(group) >= self._group_size or group_bytes >= self._group_bytes:
                flush()
        flush()
        refs: dict[Any, object] = {}
        while tasks or refs:
            while tasks and len(refs) < limit:
                submit, ctx = tasks.popleft()
                refs[submit()] = ctx
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            for ref in ready:
                self._collect(ref, refs.pop(ref))
            if self._on_progress is not None:
                self._on_progress(self.snapshot())

    def _collect(self, ref: Any, ctx: object) -> None:
        try:
            value = self._ray.get(ref, timeout=60)
            error: BaseException | None = None
        except Exception as exc:  # the task failed for good (worker lost beyond max_retries)
            value, error = None, exc
        if isinstance(ctx, _Large):
            outcome = value if isinstance(value, RangeOutcome) else RangeOutcome(
                start=-1, stop=-1, error=f"{ctx.planned.source}: Ray task failed: {error}",
                error_kind="local",
            )  # fmt: skip
            ctx.outcomes.append(outcome)
            ctx.pending -= 1
            if ctx.pending == 0:
                self._commit_large(ctx)
            return
        assert isinstance(ctx, list)
        if error is not None or not isinstance(value, list):
            for e in ctx:
                p = self._planned_by_dest(e.dest)
                self._fail(p, e.dest, RuntimeError(f"Ray task failed: {error}"), "local")
            return
        for out in value:
            self._finish(out, self._planned_by_dest(out.path or "").rel)

    def _planned_by_dest(self, dest: str) -> Planned:
        return self._planned[os.path.relpath(dest, self._paths.root)]

    def snapshot(self) -> BatchProgress:
        return BatchProgress(
            objects_total=self._total, objects_done=self._done, objects_failed=self._failed,
            objects_skipped=self._skipped, bytes_total=self._total_bytes,
            bytes_done=self._bytes_done, elapsed=time.monotonic() - self._started,
        )  # fmt: skip


def _range_files(dest: str) -> list[str]:
    """The range checkpoints and locks of `dest`, of whatever range size the runs that left
    them used (`DEST.objget-r<start>.ckpt` / `.lock`)."""
    parent, name = os.path.split(dest)
    pattern = re.compile(re.escape(name) + r"\.objget-r\d+\.(?:ckpt|lock)")
    try:
        names = os.listdir(parent or ".")
    except OSError:
        return []
    return [os.path.join(parent, n) for n in names if pattern.fullmatch(n)]
