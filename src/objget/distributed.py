"""The same batch on a Ray cluster: `pip install 'objget[ray]'`.

```python
from objget.distributed import download_many
result = download_many("s3://bucket/shards/", "/mnt/shared/shards/", ray_address="auto")
```

The driver (this process) lists, maps keys to paths, keeps the journal (`DIR/.objget-batch.db`)
and plans; Ray tasks do the transfers onto `dest_dir`, which every node must see at the same
path (a shared filesystem). Small objects go in groups (one task downloads a group with a few
connections); objects of at least `2 * range_size` are split into byte ranges, one task per
range, all writing into the object's shared temp file; the driver verifies the combined CRC and
commits the file. At most `max_in_flight` tasks are outstanding (no million-task explosion).
A worker that dies mid-task: Ray runs the task again (`max_retries`) and it resumes from the
checkpoint the lost attempt saved (whole objects: `DEST.objget-ckpt`; ranges:
`DEST.objget-r<start>.ckpt`). Failures are per object, as in `objget.batch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._batch_journal import Journal
from ._batch_models import BatchItem, BatchProgress, BatchResult, ObjectResult
from ._batch_ray_driver import Driver
from ._config import DownloadConfig
from ._downloader import Downloader
from .backends import BackendOptions
from .backends._base import Backend
from .batch import build_sources, prepare

__all__ = ["download_many", "import_ray"]

MiB = 1024 * 1024


def import_ray() -> Any:
    """The `ray` module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "objget.distributed needs Ray, which is not installed: pip install 'objget[ray]'"
        ) from exc
    return ray


def download_many(
    sources: str | BatchItem | Iterable[str | BatchItem] | None,
    dest_dir: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    config: DownloadConfig | None = None,
    options: BackendOptions | None = None,
    dry_run: bool = False,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_result: Callable[[ObjectResult], None] | None = None,
    ray_address: str | None = None,
    group_size: int = 64,
    group_bytes: int = 64 * MiB,
    range_size: int = 64 * MiB,
    task_connections: int = 4,
    max_in_flight: int | None = None,
    max_retries: int = 3,
) -> BatchResult:
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
    started = time.monotonic()
    if range_size < 1 * MiB or group_size < 1 or task_connections < 1 or max_retries < 0:
        raise ValueError("range_size >= 1 MiB, group_size >= 1, task_connections >= 1 needed")
    src = build_sources(sources, manifest=manifest, include=include, exclude=exclude)
    root = os.path.abspath(os.fspath(dest_dir))
    if not dry_run:
        os.makedirs(root, exist_ok=True)
    config = config or DownloadConfig()
    options = options or BackendOptions()
    cache: dict[tuple[str, str], Backend] = {}
    results: list[ObjectResult] = []

    def emit(out: ObjectResult) -> None:
        results.append(out)
        if on_result is not None:
            on_result(out)

    with Downloader(config=config, options=options) as dl, Journal(root, readonly=dry_run) as jr:
        todo, refused, skipped = prepare(src, root, dl, cache, jr)
        for out in (*refused, *skipped):
            emit(out)
        if dry_run:
            for p in todo:
                path = os.path.join(root, p.rel)
                emit(ObjectResult(source=p.source, path=path, status="planned", size=p.size))
            return BatchResult(
                objects=tuple(results), elapsed=time.monotonic() - started, dry_run=True
            )
        ray = import_ray()
        own = not ray.is_initialized()
        if own:
            ray.init(address=ray_address, log_to_driver=False)
        try:
            driver = Driver(
                ray,
                dl,
                root,
                jr,
                group_size=group_size,
                group_bytes=group_bytes,
                range_size=range_size,
                task_connections=task_connections,
                max_in_flight=max_in_flight,
                max_retries=max_retries,
                on_progress=on_progress,
                on_result=emit,
            )
            driver.run(todo, skipped=len(skipped))
            if not any(out.status == "failed" for out in results):
                jr.remove()  # every object is in place and durable: DIR is left clean
        finally:
            if own:
                ray.shutdown()
    return BatchResult(objects=tuple(results), elapsed=time.monotonic() - started)
