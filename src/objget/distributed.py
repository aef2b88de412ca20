"""The same batch on a Ray cluster (`pip install 'objget[ray]'`): `download_many` is
`objget.download_many(..., runner=RayRunner(...))`. This process lists, journals and plans; Ray
tasks download small objects in groups and large ones as one task per byte range (the engine's
window phases) into `dest_dir`, which every node must see at the same path; the driver
finishes large objects (the engine's finish). See docs/ray.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._batch_feed import Feed
from ._batch_journal import Journal, Row
from ._batch_models import BatchProgress, BatchResult, ObjectResult
from ._batch_ray_driver import Driver
from ._batch_sources import Planned
from ._downloader import Downloader
from .batch import SourceArg
from .batch import download_many as _download_many

__all__ = ["RayRunner", "download_many", "import_ray"]

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
        """The whole listing first (the driver plans with every object known), then Ray."""
        todo, skipped = _drain(more)
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


def _drain(more: Feed) -> tuple[list[Planned], int]:
    """Everything `more` hands over, until the listing ends: (to download, skipped)."""
    waiting, skipped, ended = threading.Event(), 0, False
    todo: list[Planned] = []
    more.start(waiting.set)
    try:
        while not ended:
            waiting.clear()
            new, skips, ended = more.take()
            todo.extend(new)
            skipped += skips
            if not ended:
                waiting.wait(1.0)
        return todo, skipped
    finally:
        more.close()


def download_many(
    sources: SourceArg, dest_dir: str | os.PathLike[str], *, ray_address: str | None = None,
    group_size: int = 64, group_bytes: int = 64 * MiB, range_size: int = 64 * MiB,
    task_connections: int = 4, max_in_flight: int | None = None, max_retries: int = 3,
    **batch: Any,
) -> BatchResult:  # fmt: skip
    """`objget.download_many` on Ray; the same arguments (`batch`: `manifest`, `include`,
    `exclude`, `config`, `options`, `dry_run`, `on_progress`, `on_result`, `sums`) and result,
    plus:

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
    return _download_many(sources, dest_dir, runner=runner, **batch)
