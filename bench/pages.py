"""The memory each timed run starts from (`python -m bench --pages warm|as-is`).

This VM kind hands freed guest memory back to its host (the virtio-balloon device's free page
reporting: `/sys/module/page_reporting/parameters/reported_kib` grew by 130-370 MiB within
1.5-6 s of deleting a 1 GiB file). A page handed back is faulted in again by the host the
next time the guest uses it, so a write into the page cache that is given such pages is several
times slower than one given pages freed a moment before. `python -m bench.pages DIR` measures
it: 1 GiB of buffered 1 MiB `pwrite`s into a new file in DIR, each right after a 1 GiB file was
deleted, after a pause of 0, 0.5, 1, 2, 3 and 6 s. On this VM: 0.19 s at once and after 0.5 s,
0.65 s after 1 s, 0.63-0.68 s after 1.5-2 s, 1.0-1.1 s after 3-6 s.

Between two timed runs the bench verifies the last file (sha256 of up to 1 GiB) and deletes it,
about a second, so each tool that writes through the page cache may find warm or cold pages.
What that moved in the tools themselves is far less than in the raw loop above (1 GiB from
nginx, four rounds, each tool run right after 1 GiB was populated and freed, as the run before
left it, and after a 4 s pause): curl -> file 0.94-1.11 s warm, 0.84-1.03 s as left, 1.01-1.11 s
after the pause; `objget.download` 0.60-1.04 s, 0.62-0.76 s and 0.67-0.91 s. Why the cost is
so much smaller inside a download than in the loop (+0.05-0.15 s against +0.9 s) is not known.

`--pages warm`: right before each timed run, as much anonymous memory as the run will write
(plus 64 MiB) is populated (`MADV_POPULATE_WRITE`, one call) and unmapped, so every tool's
page-cache and heap pages come from memory the guest has just freed, the same for every tool.
`as-is` (the default, as every committed run so far): no such step. The step is untimed;
populating 1 GiB of handed-back memory takes ~1 s here. The report says which was used and how
much memory the guest handed back during the run. On 2026-12-05 three full runs (`python -m
bench`, ~14 min each) handed back 23,824 MiB as-is and 17,244 MiB warm, against 30-392 MiB in
1 GiB-only runs of 45 timed runs each. The two as-is runs had repetitions in which every tool,
the peers too, took about twice its usual time (curl 1 GiB once 3.0 s, rclone 4.0 s); the warm
run had fewer, but objget's HTTPS rows still swung (1.05-1.76 s, `-j1` 0.92-1.72 s, against
curl's steady 1.00-1.03 s): warm pages are not the whole story.
"""

from __future__ import annotations

import argparse
import mmap
import os
import time
from pathlib import Path

__all__ = ["MODES", "reported_kib", "warm"]

MODES = ("warm", "as-is")
_MARGIN = 64 * 1024 * 1024
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # Linux 5.14+
_REPORTED = Path("/sys/module/page_reporting/parameters/reported_kib")


def warm(size: int) -> None:
    """Populate and free `size` bytes (plus a margin) of anonymous memory; where the kernel has
    no MADV_POPULATE_WRITE, touch one byte a page."""
    length = size + _MARGIN
    m = mmap.mmap(-1, length)
    try:
        try:
            m.madvise(_POPULATE_WRITE)
        except OSError:
            for at in range(0, length, mmap.PAGESIZE):
                m[at] = 1
    finally:
        m.close()


def reported_kib() -> int | None:
    """KiB of free memory this guest has handed back to its host since boot (None: unknown)."""
    try:
        return int(_REPORTED.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, size: int, buf: memoryview) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for at in range(0, size, len(buf)):
            os.pwrite(fd, buf, at)
        return time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description="buffered writes after a pause since the last free")
    p.add_argument("dir", type=Path, help="a directory on the filesystem to measure")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    size = a.size_mib * 1024 * 1024
    block = mmap.mmap(-1, 1024 * 1024)
    block.write(os.urandom(len(block)))
    path = a.dir / "bench-pages.tmp"
    _write(path, size, memoryview(block))
    for _ in range(a.rounds):
        for pause in (0.0, 0.5, 1.0, 2.0, 3.0, 6.0):
            before = reported_kib()
            time.sleep(pause)
            after = reported_kib()
            handed = "?" if before is None or after is None else f"{(after - before) // 1024}"
            seconds = _write(path, size, memoryview(block))
            print(f"pause {pause:3.1f} s: handed back {handed:>5} MiB; write {seconds:.3f} s")


if __name__ == "__main__":
    main()
