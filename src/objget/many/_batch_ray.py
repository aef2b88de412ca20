"""The work a Ray task does, as plain functions (no Ray import here): a group of objects, run as
the local batch runs them (`Runner`: a small object in one GET, the engine's single-request
mode), or one byte range of a large object written into the shared temp file. What crosses the task
boundary is picklable: URLs (each worker resolves its own backend and credentials), frozen
configs, the object's metadata. A range task is the engine's window phases
(`_windows.prepare_window`, `_phases.fetch`): its checkpoint, CRC'd spans and their read-back
on resume are the engine's, so a task run again after its worker died resumes on any node.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .._config import DownloadConfig
from .._exceptions import DownloadError
from .._exit import error_kind
from .._models import ByteRange, ObjectMeta
from ..backends import BackendOptions, resolve
from ..backends._base import Backend
from ..engine._downloader import Downloader
from ..engine._phases import Span, fetch
from ..engine._windows import prepare_window
from ._batch_models import ObjectResult, failed
from ._batch_run import Runner
from ._batch_sources import Listed, Planned

__all__ = ["RangeJob", "RangeOutcome", "picklable", "run_group", "run_range"]


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
        runner = Runner(dl, root, None)
        runner.run(plan, {})
    return [refused.get(e.rel) or runner.result(e.rel) for e in entries]


def run_range(job: RangeJob, config: DownloadConfig, options: BackendOptions) -> RangeOutcome:
    """Fetch bytes [start, stop) of the object into the shared temp file (made by the driver),
    resuming from this window's checkpoint once its spans read back right."""
    meta = job.meta
    try:
        with Downloader(config=config, options=options) as dl:
            found = resolve(job.source, dl.transport, options, {})
            display = found.backend.display(found.key)
            window = ByteRange(job.start, job.stop)
            with prepare_window(
                found.backend, found.key, meta, job.dest, window, display=display, config=config
            ) as w:
                fetch(w)
                return RangeOutcome(start=job.start, stop=job.stop, spans=w.spans,
                                    resumed=w.resumed, fetched=w.fetched)  # fmt: skip
    except (DownloadError, OSError, ValueError) as exc:
        return RangeOutcome(
            start=job.start, stop=job.stop, error=f"{job.source}: {exc}", error_kind=error_kind(exc)
        )
