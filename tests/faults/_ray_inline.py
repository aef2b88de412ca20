"""A stand-in for the `ray` module that runs objget's Ray tasks in this process, so the Ray
driver and its range tasks run without a cluster: under strace, on loop-mounted file systems,
in unit tests.

`python -m tests.faults._ray_inline URL DEST_DIR RANGE_SIZE RATE` downloads one object the way
`objget.distributed` does (the driver HEADs it, creates the temp file, runs one task per range,
verifies and commits); exit 0 when it was downloaded (or skipped as done), 1 when it failed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent import futures
from typing import Any

__all__ = ["InlineRay", "download_one"]


class _Ref:
    __slots__ = ("future",)

    def __init__(self, future: futures.Future[Any]) -> None:
        self.future = future


class _Task:
    def __init__(self, ray: InlineRay, fn: Callable[..., Any]) -> None:
        self._ray = ray
        self._fn = fn

    def remote(self, *args: Any) -> _Ref:
        if self._ray.pool is None:  # run now, in the caller's thread
            future: futures.Future[Any] = futures.Future()
            try:
                future.set_result(self._fn(*args))
            except Exception as exc:
                future.set_exception(exc)
            return _Ref(future)
        return _Ref(self._ray.pool.submit(self._fn, *args))


class InlineRay:
    """The part of the `ray` module objget's driver uses. Tasks run in a pool of `threads`
    threads (0: synchronously, when submitted). `after(value)` runs on every task's value as
    the driver collects it (a test's chance to change the world in between)."""

    def __init__(self, threads: int = 0, after: Callable[[Any], None] | None = None) -> None:
        self.pool = futures.ThreadPoolExecutor(threads) if threads else None
        self._cpus = max(1, threads)
        self._after = after

    def remote(self, **_options: Any) -> Callable[[Callable[..., Any]], _Task]:
        return lambda fn: _Task(self, fn)

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": float(self._cpus)}

    def is_initialized(self) -> bool:
        return True

    def wait(
        self, refs: list[_Ref], *, num_returns: int = 1, timeout: float | None = None
    ) -> tuple[list[_Ref], list[_Ref]]:
        by_future = {r.future: r for r in refs}
        done, _ = futures.wait(by_future, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        ready = [r for r in refs if r.future in done][:num_returns]
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: _Ref, *, timeout: float | None = None) -> Any:
        value = ref.future.result(timeout=timeout)
        if self._after is not None:
            self._after(value)
        return value

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def download_one(
    url: str, root: str, *, range_size: int, rate: int | None = None, threads: int = 2
) -> list[Any]:
    """One object into `root` through objget's Ray driver on an InlineRay; the results."""
    from objget import DownloadConfig
    from objget.backends import resolve
    from objget.distributed import Driver, RayRunner
    from objget.engine._downloader import Downloader
    from objget.many._batch_journal import Journal
    from objget.many._batch_skip import classify
    from objget.many._batch_sources import Planned

    cfg = DownloadConfig(limit_rate=rate, checkpoint_interval=0.25, part_size=256 * 1024)
    results: list[Any] = []
    os.makedirs(root, exist_ok=True)
    with Downloader(config=cfg) as dl, Journal(root) as journal:
        found = resolve(url, dl.transport, dl.options, {})
        meta = found.backend.head(found.key)
        planned = Planned(
            source=url, rel=url.rsplit("/", 1)[-1], backend=found.backend, key=found.key,
            size=meta.size, etag=meta.etag,
        )  # fmt: skip
        todo, skipped = classify([planned], journal.rows(), root, journal)
        results.extend(skipped)
        ray = InlineRay(threads)
        try:
            settings = RayRunner(group_size=1, group_bytes=1, range_size=range_size,
                                 task_connections=2, max_retries=0)  # fmt: skip
            driver = Driver(ray, dl, root, journal, settings, on_progress=None,
                            on_result=results.append)  # fmt: skip
            driver.run(todo, skipped=len(skipped))
        finally:
            ray.shutdown()
    return results


def main(argv: list[str]) -> int:
    url, root, range_size, rate = argv[1], argv[2], int(argv[3]), int(argv[4])
    results = download_one(url, root, range_size=range_size, rate=rate or None)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"objget: {r.error}", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
