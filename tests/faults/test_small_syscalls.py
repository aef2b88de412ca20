"""What one small object costs the system in a batch's single-request mode, counted with strace.

A worker's run of small objects (`SmallGroup`) hands DEST's lock from one object to the next.
Counted per object (the difference between a run of many objects and one of few, so start-up
and the per-group work drop out): the calls that change the directory (the lock handed on,
the temp file renamed onto DEST) and the stat calls (the lock's and the temp file's identity
checks). Each is a system call that also hands the GIL to another worker when one waits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._harness import count_calls

_SCRIPT = r"""
import sys
from objget import DownloadConfig
from objget._models import ObjectMeta
from objget.engine._dirs import ParentMaker
from objget.engine._small_group import SmallGroup
from objget.testing import MemoryBackend, no_wait_retry

root, count = sys.argv[1], int(sys.argv[2])
objects = {f"d/o{i:04d}": bytes([i % 251]) * 1000 for i in range(count)}
store = MemoryBackend(objects)
maker = ParentMaker(root)
config = DownloadConfig(retry=no_wait_retry())
buf = memoryview(bytearray(config.buffer_size))
with SmallGroup(maker, buf=buf, config=config, limiter=None) as group:
    for key, data in objects.items():
        maker.path(key)
        meta = ObjectMeta(size=len(data), etag=store._etags[key],
                          last_modified="Sun, 06 Nov 1994 08:49:37 GMT")
        group.fetch(store, key, key, meta=meta, sha256=None)
"""

DIRECTORY = ("linkat", "unlinkat", "renameat", "renameat2", "rename", "link", "unlink")
STATS = ("newfstatat", "fstat", "statx", "lstat", "stat")


def _counts(tmp: Path, count: int) -> dict[str, int]:
    root = tmp / f"run{count}"
    root.mkdir()
    log = tmp / f"strace{count}.log"
    done = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(log), "-e", f"trace={','.join(DIRECTORY + STATS)}",
         sys.executable, "-c", _SCRIPT, str(root), str(count)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = sorted(p.name for p in (root / "d").iterdir())
    assert names == [f"o{i:04d}" for i in range(count)]  # no lock or temp file left
    for i in (0, count - 1):
        assert (root / "d" / f"o{i:04d}").read_bytes() == bytes([i % 251]) * 1000
    return count_calls(log, DIRECTORY + STATS)


def test_a_small_object_costs_two_directory_changes_and_three_stats(tmp_path):
    """Per object: the lock moves to the next name in one rename that never replaces (not a
    link plus an unlink), the temp file is renamed onto DEST; the lock file's identity is
    checked once (its inode is known from when it was taken), the temp file's twice (after
    its fsync, before its rename), and the directory is not asked again for every object."""
    few, many = _counts(tmp_path, 10), _counts(tmp_path, 110)

    def per_object(names: tuple[str, ...]) -> float:
        return sum(many.get(n, 0) - few.get(n, 0) for n in names) / 100

    assert per_object(DIRECTORY) <= 2.0, (few, many)
    assert per_object(STATS) <= 3.0, (few, many)
