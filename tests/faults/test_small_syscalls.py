"""What one small object costs the system in a batch's single-request mode, counted with strace.

A worker's run of small objects (`SmallGroup`) writes each object into its DEST's lock file
and renames that onto DEST. Counted per object (the difference between a run of many objects
and one of few, so start-up and the per-group work drop out): the calls that change the
directory (the lock file renamed onto DEST), the stat calls (the lock file's `fstat` when it is
taken, its identity check before the rename) and the lock's `flock`. Each is a system call that
also hands the GIL to another worker when one waits. (Before the lock file was the temp file:
two directory changes, the lock's `renameat2` to the next name and the temp file's rename, and
three stat calls, 9.6 system calls per object in all against 8.6 now, counted with `strace -f
-c` on this script.)
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
LOCKS = ("flock",)


def _counts(tmp: Path, count: int) -> dict[str, int]:
    root = tmp / f"run{count}"
    root.mkdir()
    log = tmp / f"strace{count}.log"
    done = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(log), "-e",
         f"trace={','.join(DIRECTORY + STATS + LOCKS)}",
         sys.executable, "-c", _SCRIPT, str(root), str(count)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = sorted(p.name for p in (root / "d").iterdir())
    assert names == [f"o{i:04d}" for i in range(count)]  # no lock or temp file left
    for i in (0, count - 1):
        assert (root / "d" / f"o{i:04d}").read_bytes() == bytes([i % 251]) * 1000
    return count_calls(log, DIRECTORY + STATS + LOCKS)


def test_a_small_object_costs_one_directory_change_two_stats_and_one_flock(tmp_path):
    """Per object: the lock file, which holds the object, is renamed onto DEST (no lock
    handed to the next name, no second file); its identity is taken once, by the `fstat`
    after its flock (which also tells that no other run unlinked it first), and checked once
    before its rename. Fails on the commit before: 2 directory changes and 3 stats."""
    few, many = _counts(tmp_path, 10), _counts(tmp_path, 110)

    def per_object(names: tuple[str, ...]) -> float:
        return sum(many.get(n, 0) - few.get(n, 0) for n in names) / 100

    assert per_object(DIRECTORY) <= 1.0, (few, many)
    assert per_object(STATS) <= 2.0, (few, many)
    assert per_object(LOCKS) <= 1.0, (few, many)


_SYNC_SCRIPT = _SCRIPT.replace(
    "import sys\n", "import sys\nimport objget.engine._syncfs as s\ns.DIRTY_MOST = 1 << 62\n", 1
)  # the test asks how a group syncs, not how dirty the rest of the machine is right now
SYNCS = ("fsync", "fdatasync", "syncfs")


def test_a_group_of_small_files_is_synced_by_one_syncfs_before_any_of_them_is_renamed(tmp_path):
    """On a local filesystem (here the test's tmp directory) a worker's small files are made
    durable together, one `syncfs` per run of SYNC_MOST, not an fsync each (fsyncs are left
    for the directories); and no lock file (the temp file) is renamed onto its DEST while any
    write before it is not synced yet: a pwrite64 is always followed by a sync before the next
    rename."""
    from objget.engine._small_group import SYNC_MOST

    root = tmp_path / "run"
    root.mkdir()
    log = tmp_path / "strace.log"
    count = 4 * SYNC_MOST
    done = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(log), "-e",
         f"trace=pwrite64,renameat,renameat2,rename,{','.join(SYNCS)}",
         sys.executable, "-c", _SYNC_SCRIPT, str(root), str(count)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for i in range(count):
        assert (root / "d" / f"o{i:04d}").read_bytes() == bytes([i % 251]) * 1000
    calls = count_calls(log, SYNCS)
    assert calls.get("syncfs", 0) == count // SYNC_MOST, calls
    assert calls.get("fsync", 0) + calls.get("fdatasync", 0) <= 2, calls  # the directory's
    unsynced = 0
    renames = 0
    for line in log.read_text().splitlines():
        if "pwrite64(" in line:
            unsynced += 1
        elif any(f"{name}(" in line for name in SYNCS):
            unsynced = 0
        elif "rename" in line and ".objget-lock" in line:
            renames += 1
            assert unsynced == 0, line
    assert renames == count
