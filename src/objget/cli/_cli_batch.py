"""The batch forms of the `objget` command (`--recursive`, `--manifest`, `--ray`): the overall
progress bar with the active files, the summary, `--json` lines and the exit code.

Exit code 8 means "the batch ran to the end but some objects failed" (the summary and the
journal name them; run the same command again to retry them). It is not 3 or 5 because those
say *why* one download failed, and a batch mixes reasons; a script needs to tell "partly
done, re-run" from "nothing could start". Errors that stop the whole batch before or while
listing (bucket access denied, network down, journal locked) keep the single-object codes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

from .._config import DownloadConfig
from .._exit import EXIT, HANDLED, describe, exit_code
from ..backends import BackendOptions
from ..many._batch_models import BatchProgress, BatchResult, ObjectResult
from ._args import UsageError
from ._console import LiveBar, Stderr, byte_progress, format_size

__all__ = ["EXIT_SOME_FAILED", "BatchBar", "BatchJob", "run_batch"]

EXIT_SOME_FAILED = EXIT["some-failed"]
_ACTIVE_LINES = 5
_LISTED_FAILURES = 20


class BatchBar(LiveBar):
    """One overall bar (objects, bytes, speed, ETA) and up to five lines of active files."""

    def __init__(self, console: Console) -> None:
        super().__init__(byte_progress(console))
        self._overall: TaskID | None = None
        self._slots: list[TaskID] = []

    def _closing(self) -> None:
        for slot in self._slots:
            self._progress.update(slot, visible=False)

    def __call__(self, snap: BatchProgress) -> None:
        p = self._progress
        label = f"{snap.objects_done}/{snap.objects_total} objects"
        if snap.objects_failed:
            label += f", {snap.objects_failed} failed"
        # sizes a manifest does not give are learnt per object: no total rather than "/0"
        total = snap.bytes_total if snap.bytes_total >= max(snap.bytes_done, 1) else None
        if self._overall is None:
            self._overall = p.add_task(label, total=total)
            self._slots = [p.add_task("", total=None, visible=False) for _ in range(_ACTIVE_LINES)]
        p.update(self._overall, description=label, total=total, completed=snap.bytes_done)
        active = sorted(snap.active, key=lambda a: -(a.total or 0))[:_ACTIVE_LINES]
        for slot, item in zip(self._slots, active, strict=False):
            name = item.path if len(item.path) <= 40 else "…" + item.path[-39:]
            p.update(slot, description=f"  {name}", total=item.total, completed=item.done,
                     visible=True)  # fmt: skip
        for slot in self._slots[len(active) :]:
            p.update(slot, visible=False)


def _line(out: ObjectResult, listed: bool | None = None) -> str:
    """One `--json` line; with `--checksum-file`, whether the object was listed in it."""
    import json  # only with --json

    extra = {} if listed is None else {"checksum_file": "checked" if listed else "unchecked"}
    return json.dumps({"type": "object", **out.to_dict(), **extra}, ensure_ascii=False)


def summary_text(result: BatchResult, dest: str) -> str:
    done = result.downloaded
    size = sum(o.size or 0 for o in done)
    text = (
        f"Downloaded {len(done)} objects ({format_size(size)}) to {dest} in "
        f"{result.elapsed:.2f} s; {len(result.skipped)} unchanged skipped; "
        f"{len(result.failed)} failed"
    )
    if result.failed:
        text += ":"
        for o in result.failed[:_LISTED_FAILURES]:
            text += f"\n  [{o.error_kind}] {o.error}"
        if len(result.failed) > _LISTED_FAILURES:
            text += f"\n  ... and {len(result.failed) - _LISTED_FAILURES} more (see --json)"
        text += "\nrun the same command again to retry the failed objects"
    return text


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchJob:
    """A batch as the command line asks for it: a prefix with `--recursive`, or `--manifest
    FILE` (then the one positional argument is the destination directory), the path filters,
    and how to download. A combination the command does not take is a usage error."""

    source: str
    dest: str | None
    recursive: bool
    manifest: str | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    dry_run: bool
    ray_address: str | None  # "local": a local Ray instance
    config: DownloadConfig
    options: BackendOptions
    sums: dict[str, str] | None = None  # --checksum-file: relative path -> SHA-256

    def __post_init__(self) -> None:
        if self.sums is not None and self.ray_address is not None:
            raise UsageError("--checksum-file is not supported with --ray yet")
        if self.manifest is not None and self.dest is not None:
            raise UsageError("with --manifest FILE give only the destination directory")
        if self.manifest is None and not self.recursive:
            raise UsageError("a prefix needs --recursive (or give --manifest FILE)")

    @property
    def prefix(self) -> str | None:
        """The prefix to list; None when the manifest names the sources."""
        return None if self.manifest is not None else self.source

    @property
    def dest_dir(self) -> str:
        if self.manifest is not None:
            return self.source
        return self.dest or "."


def run_batch(err: Stderr, job: BatchJob, *, as_json: bool, quiet: bool) -> None:
    """Run the batch; exits with 8 when some objects failed, or when `job.sums`
    (`--checksum-file`) lists a path the batch did not download."""
    sums, dry_run = job.sums, job.dry_run
    root = os.path.abspath(job.dest_dir)

    def listed(out: ObjectResult) -> bool:
        return sums is not None and out.path is not None and _rel(out.path, root) in sums

    on_result: Callable[[ObjectResult], None] | None = None
    if as_json:

        def on_result(out: ObjectResult) -> None:
            print(_line(out, listed(out) if sums is not None else None), flush=True)

    try:
        result = _run(err, job, on_result, show=not (quiet or as_json or dry_run))
    except HANDLED as exc:  # the same table as a single object's (_exit.py)
        err.fail(describe(exc), exit_code(exc))
    if dry_run and not as_json:
        for o in result.objects:
            if o.status == "planned":
                size = "?" if o.size is None else format_size(o.size)
                print(f"would download {o.source} -> {o.path} ({size})", flush=True)
    missing: list[str] = []
    extra: dict[str, object] = {}
    if sums is not None:
        present = {_rel(o.path, root) for o in result.objects if o.path is not None}
        missing = sorted(set(sums) - present)
        unchecked = sum(1 for o in result.downloaded if not listed(o))
        extra = {"checksum_file_missing": missing, "checksum_file_unchecked": unchecked}
    if as_json:
        import json

        print(json.dumps({"type": "summary", **result.summary(), **extra}), flush=True)
    if not quiet and (not as_json or not result.ok):
        err.print(summary_text(result, root), highlight=False)
    if sums is not None and not quiet and not as_json and extra["checksum_file_unchecked"]:
        err.print(f"{extra['checksum_file_unchecked']} downloaded objects are not listed in the "
                  "checksum file (not checked against it)", highlight=False)  # fmt: skip
    if missing:
        shown = ", ".join(missing[:_LISTED_FAILURES])
        left = len(missing) - _LISTED_FAILURES
        more = f" and {left} more" if left > 0 else ""
        err.error(
            f"the checksum file lists {len(missing)} paths the batch did not download: "
            f"{shown}{more}"
        )
    if not result.ok or missing:
        sys.exit(EXIT_SOME_FAILED)


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _run(
    err: Stderr, job: BatchJob, on_result: Callable[[ObjectResult], None] | None, *, show: bool
) -> BatchResult:
    if job.ray_address is not None:
        from ..distributed import download_many as on_ray

        address = None if job.ray_address == "local" else job.ray_address
        return on_ray(
            job.prefix, job.dest_dir, manifest=job.manifest, include=job.include,
            exclude=job.exclude, config=job.config, options=job.options, dry_run=job.dry_run,
            on_result=on_result, ray_address=address,
        )  # fmt: skip
    from ..batch import download_many

    bar = BatchBar(err.console) if show else None
    with bar if bar is not None else contextlib.nullcontext():
        return download_many(
            job.prefix, job.dest_dir, manifest=job.manifest, include=job.include,
            exclude=job.exclude, config=job.config, options=job.options, dry_run=job.dry_run,
            on_progress=bar, on_result=on_result, sums=job.sums,
        )  # fmt: skip
