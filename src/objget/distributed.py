"""The same batch on a Ray cluster (`pip install 'objget[ray]'`): `download_many` is
`objget.download_many(..., runner=RayRunner(...))`. This process lists, journals and plans;
the `Driver` groups small objects into tasks, splits large ones into one task per byte range,
keeps at most `max_in_flight` tasks outstanding, journals every object, and finishes a large
object once all its ranges are in (the engine's finish, `_windows.SharedPart`). `dest_dir`
must be seen at the same path by every node. See docs/ray.md.

The tasks (plain functions; each worker resolves its own backend and credentials from the
URLs): `run_group` runs a group of objects as the local batch runs them (`Runner`: a small
object in one GET, the engine's single-request mode); `run_range` writes one byte range into
the shared temp file through the engine's window phases (`_windows.prepare_window`,
`_phases.fetch`), whose checkpoint and CRC'd spans let a task run again after its worker
died resume on any node.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._config import DownloadConfig
from ._exceptions import DownloadError, UnsafePath
from ._exit import error_kind
from ._models import ByteRange, ObjectMeta
from .backends import BackendOptions, resolve
from .backends._base import Backend
from .batch import SourceArg
from .batch import download_many as _download_many
from .engine._downloader import Downloader, head_with_retry
from .engine._engine_face import ParentMaker
from .engine._phases import Span, fetch
from .engine._windows import SharedPart, prepare_window
from .many._batch_feed import Feed
from .many._batch_journal import Journal, Row
from .many._batch_models import BatchProgress, BatchResult, ObjectResult, Tracker, failed
from .many._batch_run import Runner
from .many._batch_sources import Listed, Planned

__all__ = ["RayRunner", "download_many", "import_ray"]  # and the tasks: run_group, run_range

MiB = 1024 * 1024


def import_ray() -> Any:
    """The `ray` module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        hint = "objget.distributed needs Ray, which is not installed: pip install 'objget[ray]'"
        raise ImportError(hint) from exc
    return ray


@dataclass(frozen=True, kw_only=True, slots=True)
class RayRunner:
    """`objget.download_many`'s runner on Ray (the arguments of `download_many` below)."""

    ray_address: str | None = None
    group_size: int = 64
    group_bytes: int = 64 * MiB
    range_size: int = 64 * MiB
    task_connections: int = 4
    max_in_flight: int | None = None
    max_retries: int = 3

    def __post_init__(self) -> None:
        small = self.range_size < 1 * MiB or self.group_size < 1 or self.task_connections < 1
        if small or self.max_retries < 0:
            raise ValueError("range_size >= 1 MiB, group_size >= 1, task_connections >= 1 needed")

    def run(
        self, dl: Downloader, root: str, journal: Journal, more: Feed, *, rows: dict[str, Row],
        on_progress: Callable[[BatchProgress], None] | None,
        on_result: Callable[[ObjectResult], None] | None,
    ) -> list[ObjectResult]:  # fmt: skip
        """`download_many`'s downloads on Ray: the whole listing first (`more`; the driver plans
        with every object known), then the tasks; every result, as reported to `on_result`."""
        todo, skipped = more.drain()
        ray = import_ray()
        own = not ray.is_initialized()
        if own:
            ray.init(address=self.ray_address, log_to_driver=False)
        try:
            driver = Driver(ray, dl, root, journal, self, on_progress=on_progress,
                            on_result=on_result)  # fmt: skip
            return driver.run(todo, skipped=skipped)
        finally:
            if own:
                ray.shutdown()


def download_many(
    sources: SourceArg, dest_dir: str | os.PathLike[str], *, ray_address: str | None = None,
    group_size: int = 64, group_bytes: int = 64 * MiB, range_size: int = 64 * MiB,
    task_connections: int = 4, max_in_flight: int | None = None, max_retries: int = 3,
    manifest: str | os.PathLike[str] | None = None, include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None, config: DownloadConfig | None = None,
    options: BackendOptions | None = None, dry_run: bool = False,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_result: Callable[[ObjectResult], None] | None = None, sums: Mapping[str, str] | None = None,
) -> BatchResult:  # fmt: skip
    """`objget.download_many` on Ray; the same arguments and result, plus:

    - `ray_address`: None starts (and stops) a local Ray instance unless Ray is already
      initialised in this process; `"auto"` joins the running cluster; or `ray://host:port`.
    - `group_size` / `group_bytes`: objects per small-object task, at most.
    - `range_size`: bytes per range task; objects of at least twice this are split.
    - `task_connections`: connections one task opens (a node runs one task per CPU, so the
      per-node connection limit is CPUs x `task_connections`).
    - `max_in_flight`: outstanding tasks at most (default: twice the cluster's CPUs).
    - `max_retries`: how often Ray re-runs a task whose worker died.

    >>> from objget.distributed import download_many  # doctest: +SKIP
    >>> download_many("oss://bucket/data/", "/mnt/nfs/data/", ray_address="auto")  # doctest: +SKIP
    """
    runner = RayRunner(
        ray_address=ray_address, group_size=group_size, group_bytes=group_bytes,
        range_size=range_size, task_connections=task_connections, max_in_flight=max_in_flight,
        max_retries=max_retries,
    )  # fmt: skip
    return _download_many(
        sources, dest_dir, runner=runner, manifest=manifest, include=include, exclude=exclude,
        config=config, options=options, dry_run=dry_run, on_progress=on_progress,
        on_result=on_result, sums=sums,
    )  # fmt: skip


# --- the tasks -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeJob:
    source: str
    dest: str
    start: int
    stop: int
    meta: ObjectMeta  # picklable()


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeOutcome:
    start: int
    stop: int
    spans: tuple[Span, ...] = ()
    resumed: tuple[Span, ...] = ()  # from the checkpoint of an earlier attempt (checked)
    error: str | None = None
    error_kind: str | None = None
    fetched: int = 0


def picklable(meta: ObjectMeta) -> ObjectMeta:
    """`meta` with its checksums in a dict (the default, a mappingproxy, does not pickle)."""
    return dataclasses.replace(meta, checksums=dict(meta.checksums))


def run_group(
    entries: list[Listed], root: str, config: DownloadConfig, options: BackendOptions,
    threads: int,
) -> list[ObjectResult]:  # fmt: skip
    """Download whole objects below `root` in this worker on `threads` connections, as the
    local batch does (`Runner`); the driver journals them. The results in `entries`' order."""
    refused: dict[str, ObjectResult] = {}  # no backend here (its extra, its credentials)
    plan: list[Planned] = []
    with Downloader(config=dataclasses.replace(config, max_workers=threads), options=options) as dl:
        cache: dict[tuple[str, str], Backend] = {}
        for e in entries:
            try:
                found = resolve(e.source, dl.transport, options, cache)
            except (DownloadError, OSError, ValueError) as exc:
                refused[e.rel] = failed(e.source, os.path.join(root, e.rel), exc, size=e.size)
                continue
            listed = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
            listed["version_id"] = e.version_id or found.version_id
            plan.append(Planned(backend=found.backend, key=found.key, **listed))
        # each task lists a directory again: no further than it has objects (else lstat each)
        runner = Runner(dl, root, None, paths=ParentMaker(root, most=len(entries)))
        runner.run(plan, {})
    got = runner.tracker.by_rel or {}
    return [refused.get(e.rel) or got[e.rel] for e in entries]


def run_range(job: RangeJob, config: DownloadConfig, options: BackendOptions) -> RangeOutcome:
    """Fetch bytes [start, stop) of the object into the shared temp file (made by the driver),
    resuming from this window's checkpoint once its spans read back right."""
    try:
        with Downloader(config=config, options=options) as dl:
            found = resolve(job.source, dl.transport, options, {})
            display = found.backend.display(found.key)
            window = ByteRange(job.start, job.stop)
            with prepare_window(
                found.backend, found.key, job.meta, job.dest, window, display=display, config=config
            ) as w:
                fetch(w)
                return RangeOutcome(start=job.start, stop=job.stop, spans=w.spans,
                                    resumed=w.resumed, fetched=w.fetched)  # fmt: skip
    except (DownloadError, OSError, ValueError) as exc:
        return RangeOutcome(
            start=job.start, stop=job.stop, error=f"{job.source}: {exc}", error_kind=error_kind(exc)
        )


# --- the driver ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Large:
    planned: Planned
    shared: SharedPart
    pending: int
    outcomes: list[RangeOutcome] = field(default_factory=list)


class Driver:
    def __init__(
        self, ray: Any, dl: Downloader, root: str, journal: Journal, settings: RayRunner, *,
        on_progress: Callable[[BatchProgress], None] | None,
        on_result: Callable[[ObjectResult], None] | None,
    ) -> None:  # fmt: skip
        self._ray, self._dl, self._journal, self._paths = ray, dl, journal, ParentMaker(root)
        self._set, self._on_progress = settings, on_progress
        self._tracker = Tracker(on_result)

    # --- results --------------------------------------------------------------------
    def _finish(self, *done: tuple[Planned, ObjectResult]) -> None:
        """Journal the outcomes in one commit (a group task's all at once), then report them."""
        rows = [row for p, out in done if (row := Row.outcome(p, out)) is not None]
        if rows:
            self._journal.put(rows)
        for p, out in done:
            self._tracker.finish(p.rel, out)

    def _fail(
        self, p: Planned, dest: str | None, exc: BaseException, kind: str | None = None
    ) -> None:
        self._finish((p, failed(p.source, dest, exc, size=p.size, kind=kind)))

    # --- planning -------------------------------------------------------------------
    def _prepare_large(self, p: Planned, dest: str) -> tuple[_Large, list[RangeJob]]:
        meta = head_with_retry(p.backend, p.key, p.version_id, self._dl.config.retry)
        if meta.size is None:
            raise DownloadError(f"{p.source}: the store gave no size", source=p.source)
        shared = SharedPart(p.backend, p.key, meta, dest, display=p.source)
        shared.open()
        step, m = self._set.range_size, picklable(meta)
        jobs = [
            RangeJob(source=p.source, dest=dest, start=a, stop=min(a + step, meta.size), meta=m)
            for a in range(0, meta.size, step)
        ]
        big = _Large(planned=p, shared=shared, pending=len(jobs))
        return big, jobs

    def _commit_large(self, big: _Large) -> None:
        p = big.planned
        try:
            errors = [o for o in big.outcomes if o.error]
            if errors:
                self._fail(p, big.shared.dest, RuntimeError(errors[0].error), errors[0].error_kind)
                return
            result = big.shared.finish(big.outcomes, sha256=p.sha256)
        except (DownloadError, OSError, ValueError) as exc:
            self._fail(p, big.shared.dest, exc)
            return
        finally:
            big.shared.release()
        out = ObjectResult(source=p.source, path=result.path, status="downloaded",
                           size=result.size, etag=result.etag, result=result)  # fmt: skip
        self._finish((p, out))

    # --- the loop -------------------------------------------------------------------
    def run(self, todo: list[Planned], *, skipped: int) -> list[ObjectResult]:
        """Every object of `todo`; the results in the order they were reported."""
        ray, conns = self._ray, self._set.task_connections
        cfg, options = self._dl.config, self._dl.options
        group_fn = ray.remote(num_cpus=1, max_retries=self._set.max_retries)(run_group)
        range_fn = ray.remote(num_cpus=1, max_retries=self._set.max_retries)(run_range)
        limit = self._set.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        range_cfg = dataclasses.replace(
            cfg, max_workers=conns, min_workers=min(cfg.min_workers, conns)
        )
        self._tracker.add(len(todo), sum(p.size or 0 for p in todo), skipped=skipped)
        tasks: deque[tuple[Callable[[], Any], object]] = deque()
        group: list[Planned] = []
        group_bytes = 0

        def flush() -> None:
            nonlocal group, group_bytes
            if group:
                entries = [p.listed() for p in group]
                args = (entries, self._paths.root, cfg, options, conns)
                tasks.append((functools.partial(group_fn.remote, *args), group))
            group, group_bytes = [], 0

        for p in todo:
            dest: str | None = None
            try:
                dest = self._paths.path(p.rel)
                self._journal.put([Row.running(p, dest)])
                if p.size is not None and p.size >= 2 * self._set.range_size:
                    big, jobs = self._prepare_large(p, dest)
                    args = (range_cfg, options)
                    tasks.extend((functools.partial(range_fn.remote, j, *args), big) for j in jobs)
                    continue
            except (UnsafePath, DownloadError, OSError) as exc:
                self._fail(p, dest, exc)
                continue
            group.append(p)
            group_bytes += p.size or 0
            if len(group) >= self._set.group_size or group_bytes >= self._set.group_bytes:
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
                self._on_progress(self._tracker.snapshot())
        return self._tracker.results

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
        assert isinstance(ctx, list)  # a group: the objects in the task's order
        if error is not None or not isinstance(value, list):
            lost = RuntimeError(f"Ray task failed: {error}")
            value = [
                failed(p.source, os.path.join(self._paths.root, p.rel), lost, size=p.size,
                       kind="local")
                for p in ctx
            ]  # fmt: skip
        self._finish(*zip(ctx, value, strict=True))
