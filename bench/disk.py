"""The disk ceiling: what this disk persists per second, with no network in the way.

Writes `size` bytes from memory in 1 MiB `pwrite`s to a new file, four ways:

- **no sync**: pwrite only; the data is in the page cache, not on the disk (what curl leaves);
- **pwrite, then fsync**: all the write-back happens in the final fsync (durable);
- **sync_file_range per 32 MiB window**: after each window is written, start its write-back
  (`SYNC_FILE_RANGE_WRITE`) and wait for the window before it (`WAIT_BEFORE|WRITE|WAIT_AFTER`),
  so the disk works while the next window is written; then fsync (durable, and the final
  fsync has little left to do). `os` has no sync_file_range: it is called through ctypes;
- **O_DIRECT** from a page-aligned (mmap) buffer: no page cache; then fsync (durable).

Each row: write s (the pwrites, with the windows' syncs), final fsync s, total s and the
process's CPU s (user+sys; the kernel's flusher threads are not counted). The file is deleted
and `os.sync()` called between runs (untimed); methods are interleaved, rotated per repetition.
Each buffered run follows an untimed buffered write of the same size: in a VM that hands freed
memory back to its host, a buffered write after a pause (here: after the O_DIRECT run) took
~50% longer, paying the host's page faults.

`python bench/disk.py --method M --size BYTES DEST` writes one file one way (the bench's
`[limit] disk` rows, timed as a whole process like curl).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["METHODS", "ceiling", "table"]

MiB = 1024 * 1024
CHUNK = MiB
WINDOW = 32 * MiB
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4

Timing = tuple[float, float, float, float]  # write s, final fsync s, total s, CPU s


def _sync_file_range() -> Callable[[int, int, int, int], None]:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.sync_file_range
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def call(fd: int, offset: int, nbytes: int, flags: int) -> None:
        if fn(fd, offset, nbytes, flags) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"sync_file_range: {os.strerror(err)}")

    return call


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _write(path: Path, size: int, method: str) -> Timing:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    direct = method == "O_DIRECT"
    if direct:
        flags |= os.O_DIRECT
        buf: mmap.mmap | bytes = mmap.mmap(-1, CHUNK)  # page-aligned, as O_DIRECT needs
        buf.write(os.urandom(CHUNK))
    else:
        buf = os.urandom(CHUNK)
    sfr = _sync_file_range() if method == "sync_file_range" else None
    cpu0, t0 = _cpu(), time.perf_counter()
    fd = os.open(path, flags, 0o600)
    try:
        pos = 0
        while pos < size:
            os.pwrite(fd, buf, pos)
            pos += CHUNK
            if sfr is not None and pos % WINDOW == 0:
                sfr(fd, pos - WINDOW, WINDOW, SYNC_FILE_RANGE_WRITE)
                if pos >= 2 * WINDOW:
                    both = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                    sfr(fd, pos - 2 * WINDOW, WINDOW, both | SYNC_FILE_RANGE_WAIT_AFTER)
        t1 = time.perf_counter()
        if method != "no sync":
            os.fsync(fd)
        t2 = time.perf_counter()
    finally:
        os.close(fd)
        if isinstance(buf, mmap.mmap):
            buf.close()
    return t1 - t0, t2 - t1, t2 - t0, _cpu() - cpu0


METHODS = ("no sync", "pwrite, then fsync", "sync_file_range", "O_DIRECT")


def ceiling(work: Path, size_mib: int, reps: int) -> dict[str, list[Timing]]:
    """Every method `reps` times on a file under `work` (the downloads' filesystem)."""
    path = work / "disk-ceiling"
    res: dict[str, list[Timing]] = {}
    for rep in range(reps):
        order = METHODS[rep % len(METHODS) :] + METHODS[: rep % len(METHODS)]
        for method in order:
            if method != "O_DIRECT":  # warm the page cache's memory first (untimed): in a VM
                _write(path, size_mib * MiB, "no sync")  # freed pages go back to the host
                path.unlink()  # and the next buffered write pays its page faults (~+50%)
            os.sync()
            try:
                res.setdefault(method, []).append(_write(path, size_mib * MiB, method))
            finally:
                path.unlink(missing_ok=True)
    os.sync()
    return res


def table(res: dict[str, list[Timing]], size_mib: int) -> list[str]:
    """Markdown rows (medians of each column)."""
    out = [
        f"| {size_mib} MiB in 1 MiB pwrites | write s | final fsync s | total s | CPU s | MiB/s "
        "| total min–max s |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        runs = res.get(method)
        if not runs:
            continue
        w, f, t, c = (statistics.median(col) for col in zip(*runs, strict=True))
        durable = "" if method == "no sync" else " (durable)"
        lo, hi = min(r[2] for r in runs), max(r[2] for r in runs)
        out.append(f"| {method}{durable} | {w:.3f} | {f:.3f} | {t:.3f} | {c:.2f} | "
                   f"{size_mib / t:.0f} | {lo:.3f}–{hi:.3f} |")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/disk.py", description=__doc__)
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--size", type=int, required=True, help="bytes (a multiple of 1 MiB)")
    p.add_argument("dest", type=Path, help="a new file")
    a = p.parse_args(argv)
    _write(a.dest, a.size, a.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
