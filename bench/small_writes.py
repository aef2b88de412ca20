"""What writing a small file costs, buffered against O_DIRECT, as a batch's worker writes it:
create `NAME.part` (O_EXCL), one 64 KiB `pwrite` (from a page-aligned buffer), and per group of 8
files one `syncfs`, then each renamed; the directory fsynced at the end. THREADS threads share
COUNT files; the two ways alternate, PAIRS times each (the order swapped every pair).

    python -m bench.small_writes DIR [--count 2000] [--size 65536] [--threads 16] [--pairs 8]

DIR: a directory on the filesystem to measure (the bench's destination's). Per file and way,
medians: the process's CPU (getrusage, user + system), the whole machine's busy CPU
(/proc/stat: the kernel's flusher threads and interrupts included, other programs too), the
thread CPU of the `pwrite` and of the `syncfs` (its share per file), wall time, and the write
requests the disk completed (/sys/block/DEV/stat, DEV found from DIR's device). The files of
every run are kept until the end: creating a file right after many were deleted costs more on
ext4 without a journal (docs/batch.md), which would favour the first way of each pair. Not
part of the bench run: docs/batch.md ("Small objects written with O_DIRECT: tried, not kept").
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import mmap
import os
import resource
import shutil
import statistics
import threading
import time
from pathlib import Path

GROUP = 8


def _busy() -> int:
    """Busy jiffies of the whole machine (all but idle and iowait)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return sum(v) - v[3] - v[4]


def _disk_of(path: str) -> Path | None:
    """/sys/block/DEV/stat of the disk holding `path` (None when it cannot be told)."""
    dev = os.stat(path).st_dev
    sys_dev = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    try:
        real = sys_dev.resolve()
    except OSError:
        return None
    stat = real / "stat" if (real / "stat").exists() else None
    if real.parent.name != "block" and (real.parent / "stat").exists():
        stat = real.parent / "stat"  # a partition: count its disk
    return stat


def _writes(stat: Path | None) -> int:
    return int(stat.read_text().split()[4]) if stat else 0


def _worker(
    d: str, names: range, direct: bool, data: bytes, spent: collections.Counter[str]
) -> None:
    syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    buf = mmap.mmap(-1, len(data))
    buf[:] = data
    view = memoryview(buf)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
    dfd = os.open(d, os.O_RDONLY)
    pending: list[tuple[int, int]] = []
    mine: collections.Counter[str] = collections.Counter()

    def flush() -> None:
        t = time.thread_time()
        if syncfs(dfd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
        mine["syncfs"] += time.thread_time() - t
        for fd, i in pending:
            os.replace(f"o{i}.part", f"o{i}", src_dir_fd=dfd, dst_dir_fd=dfd)
            os.close(fd)
        pending.clear()

    for i in names:
        fd = os.open(f"o{i}.part", flags, 0o644, dir_fd=dfd)
        t = time.thread_time()
        os.pwrite(fd, view, 0)
        mine["pwrite"] += time.thread_time() - t
        pending.append((fd, i))
        if len(pending) == GROUP:
            flush()
    if pending:
        flush()
    os.fsync(dfd)
    os.close(dfd)
    spent.update(mine)


def run(d: str, direct: bool, a: argparse.Namespace, disk: Path | None) -> dict[str, float]:
    os.makedirs(d)
    data = os.urandom(a.size)
    os.sync()
    spent: collections.Counter[str] = collections.Counter()
    threads = [
        threading.Thread(
            target=_worker, args=(d, range(k, a.count, a.threads), direct, data, spent)
        )
        for k in range(a.threads)
    ]
    r0, m0, io0, w0 = (
        resource.getrusage(resource.RUSAGE_SELF),
        _busy(),
        _writes(disk),
        time.monotonic(),
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, r1 = time.monotonic() - w0, resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.3)  # the interrupts and flusher work that follow the last sync
    m1, io1 = _busy(), _writes(disk)
    per = 1e6 / a.count  # µs per file
    return {
        "process CPU": (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * per,
        "machine CPU": (m1 - m0) / os.sysconf("SC_CLK_TCK") * per,
        "pwrite": spent["pwrite"] * per,
        "syncfs": spent["syncfs"] * per,
        "wall (ms)": wall * 1e3,
        "disk writes per file": (io1 - io0) / a.count,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--size", type=int, default=64 * 1024)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--pairs", type=int, default=8)
    a = p.parse_args()
    root = os.path.join(a.dir, f"small-writes-{os.getpid()}")
    disk = _disk_of(a.dir)
    got: dict[str, list[dict[str, float]]] = {"buffered": [], "O_DIRECT": []}
    try:
        for pair in range(a.pairs):
            for way in ("buffered", "O_DIRECT") if pair % 2 == 0 else ("O_DIRECT", "buffered"):
                got[way].append(
                    run(os.path.join(root, f"{pair}-{way}"), way == "O_DIRECT", a, disk)
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{a.count} files of {a.size} bytes, {a.threads} threads, {a.pairs} pairs")
    print("per file, medians (CPU and pwrite/syncfs in µs)")
    print(f"{'':22s} {'buffered':>10s} {'O_DIRECT':>10s}  O_DIRECT lower in")
    for key in got["buffered"][0]:
        b = [r[key] for r in got["buffered"]]
        d = [r[key] for r in got["O_DIRECT"]]
        lower = sum(y < x for x, y in zip(b, d, strict=True))
        mid = f"{statistics.median(b):10.2f} {statistics.median(d):10.2f}"
        print(f"{key:22s} {mid}  {lower}/{a.pairs}")


if __name__ == "__main__":
    main()
