"""Where a small object's CPU goes, step by step, inside one process: the batch runner
(`download_many`) downloads N x 64 KiB from a SeaweedFS on loopback it starts, while the
thread CPU (`time.thread_time()`) spent in each step is summed around the step's function.

    python -m bench.many_steps [--count 2000] [--reps 3] [--dest DIR] [--workers N]

DIR is where the objects go (default: a temp dir under /dev/shm, i.e. tmpfs; give a directory
on the disk to see the filesystem's share). Prints the process's CPU per object for each batch
(getrusage), then the per-step table of docs/batch.md ("Where the CPU of one small object
goes"): µs of thread CPU per object, the steps nested (a step includes those indented below
it; the wrappers themselves add 1-3 µs a level). Not part of the bench run: a profiling tool.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests._servers.seaweed import SeaweedFS

import objget
from objget.backends import _transport as transport
from objget.backends import s3
from objget.engine import _single, _small_group
from objget.many import _batch_feed, _batch_journal, _batch_run

BUCKET = "steps"
# (owner, function name, label): the label's leading spaces nest it under the step above
STEPS: list[tuple[Any, str, str]] = [
    (_batch_feed.Feed, "_pull", "listing thread"),
    (_batch_run.Runner, "_loop", "driver thread"),
    (_batch_journal.Journal, "put", "  journal (two rows per object)"),
    (_batch_run.Runner, "_work_chunk", "worker threads"),
    (_small_group.SmallGroup, "fetch", "  SmallGroup.fetch"),
    (_single._Single, "_take", "    DEST's lock file made (the temp file)"),
    (s3.S3Backend, "get_range", "    GET: request sent, answer's head read"),
    (transport.Transport, "_send", "      sendall and the head"),
    (_single._Single, "_write", "    body read and written"),
    (_single, "stamp", "    mtime from Last-Modified"),
    (_single, "check_all", "    checks"),
    (_small_group.SmallGroup, "_flush", "  group synced and renamed (also at its close)"),
    (_small_group, "sync_files", "    syncfs (or fsyncs)"),
    (_small_group, "commit_lock_temp", "    inode check, rename, close"),
]


def instrument(spent: collections.Counter[str]) -> None:
    lock = threading.Lock()
    for owner, name, label in STEPS:
        real: Callable[..., Any] = getattr(owner, name)

        def timed(*a: Any, _real: Any = real, _label: str = label, **kw: Any) -> Any:
            start = time.thread_time()
            try:
                return _real(*a, **kw)
            finally:
                took = time.thread_time() - start
                with lock:
                    spent[_label] += took

        setattr(owner, name, timed)


def upload(store: SeaweedFS, count: int) -> None:
    store.create_bucket(BUCKET)
    blobs = [os.urandom(64 * 1024) for _ in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put(BUCKET, f"many/o-{i:05d}", blobs[i]), range(count)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--dest", help="parent directory of the batches (default: tmpfs)")
    p.add_argument("--workers", type=int, default=0, help="pin the count (default: measured)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SeaweedFS(Path(tmp, "weed")) as store:
        upload(store, a.count)
        options = objget.BackendOptions(
            endpoint=store.s3_url, anonymous=True, addressing_style="path"
        )
        n = a.workers
        config = objget.DownloadConfig(min_workers=n, max_workers=n) if n else None
        parent = Path(tempfile.mkdtemp(dir=a.dest or ("/dev/shm" if Path("/dev/shm").is_dir()
                                                      else None)))  # fmt: skip
        spent: collections.Counter[str] = collections.Counter()
        instrument(spent)
        try:
            for rep in range(a.reps):
                before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                out = objget.download_many(
                    f"s3://{BUCKET}/many/", parent / str(rep), config=config, options=options
                )
                wall, after = time.monotonic() - start, resource.getrusage(resource.RUSAGE_SELF)
                user = (after.ru_utime - before.ru_utime) / a.count * 1e3
                system = (after.ru_stime - before.ru_stime) / a.count * 1e3
                print(f"batch {rep}: {wall:.2f} s, CPU {user + system:.3f} ms per object (user "
                      f"{user:.3f}, system {system:.3f}), {len(out.failed)} failed")  # fmt: skip
        finally:
            shutil.rmtree(parent, ignore_errors=True)
        total = a.count * a.reps
        print("\nthread CPU per object, µs (a step includes the ones indented below it):")
        for _, _, label in STEPS:
            print(f"  {label:48s} {spent[label] / total * 1e6:7.1f}")


if __name__ == "__main__":
    main()
