"""bench.disk, the disk ceiling of `python -m bench.bounds`: every method writes the whole file
(sync_file_range through ctypes included) and the table has one row per method."""

from __future__ import annotations

from pathlib import Path

from bench import disk


def test_every_method_writes_and_reports(tmp_path: Path) -> None:
    res = disk.ceiling(tmp_path, 64, 1)  # two 32 MiB windows: the wait on the one before runs
    assert set(res) == set(disk.METHODS)
    for runs in res.values():
        ((write, fsync, total, cpu),) = runs
        assert write > 0 and fsync >= 0 and total >= write and cpu >= 0
    assert not list(tmp_path.iterdir())  # the file is gone after each run
    rows = disk.table(res, 64)
    assert len(rows) == 2 + len(disk.METHODS)
    assert rows[2].startswith("| no sync |") and "(durable)" in rows[3]
