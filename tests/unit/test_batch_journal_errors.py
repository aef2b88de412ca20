"""A journal that cannot be written (disk full, I/O error) stops the batch with a
`CheckpointError` that names the journal and what to do; no sqlite3 exception leaves the
library, the journal is closed (its lock free), and it never says done of an object whose
file is not in place. The real full disk is in tests/faults/test_batch_disk.py."""

from __future__ import annotations

import functools
import sqlite3

import pytest

import objget
import objget.batch
from objget import CheckpointError, DownloadConfig
from objget._exit import exit_code
from objget.many import _batch_journal
from objget.many._batch_journal import Journal, Row
from objget.many._batch_sources import Planned
from objget.testing import MemoryBackend, no_wait_retry

FULL = "database or disk is full"


class FullDisk(sqlite3.Connection):
    """A connection whose commits of writes fail as on a full disk once `full` is set, or
    from the `fill_at`-th commit that journals objects as done (and from then on, as the disk
    stays full). A commit of reads only writes nothing: it goes through."""

    fill_at = 0
    full = False
    done_commits = 0

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.wrote = self.wrote_done = False

    def executemany(self, sql, rows, /):
        rows = list(rows)
        self.wrote = True
        self.wrote_done = self.wrote_done or any("done" in r for r in rows)
        return super().executemany(sql, rows)

    def execute(self, sql, *args):
        if sql == "COMMIT":
            if self.wrote_done:
                FullDisk.done_commits += 1
                FullDisk.full |= FullDisk.done_commits == FullDisk.fill_at
            wrote, self.wrote, self.wrote_done = self.wrote, False, False
            if FullDisk.full and wrote:
                raise sqlite3.OperationalError(FULL)
        return super().execute(sql, *args)


@pytest.fixture
def full_disk(monkeypatch):
    monkeypatch.setattr(FullDisk, "full", False)
    monkeypatch.setattr(FullDisk, "done_commits", 0)
    db = _batch_journal.sqlite3  # what the journal connects with (sqlite3's C half)
    monkeypatch.setattr(db, "connect", functools.partial(db.connect, factory=FullDisk))
    return FullDisk


def test_a_commit_on_a_full_disk_is_a_clear_error_and_the_journal_stays_usable(tmp_path, full_disk):
    row = Row(dest="a", source="s3://b/a", state="running", size=1, etag='"e"')
    with Journal(str(tmp_path)) as j:
        j.put([row])
        full_disk.full = True
        with pytest.raises(CheckpointError) as caught:
            j.put([Row(dest="a", source="s3://b/a", state="done", size=1, etag='"e"')])
        assert j.rows()["a"].state == "running"  # the failed commit left nothing behind
        full_disk.full = False  # space freed: the same journal goes on
        j.put([Row(dest="b", source="s3://b/b", state="running")])
        assert sorted(j.rows()) == ["a", "b"]
    text = str(caught.value)
    assert f"the batch journal {tmp_path}/.objget-batch.db could not be written ({FULL})" in text
    assert "free space on its disk" in text and "run the same command again" in text
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert exit_code(caught.value) == 6  # a local I/O error, as a single download's full disk


def test_download_many_stops_with_a_checkpoint_error_and_a_rerun_finishes(
    tmp_path, monkeypatch, full_disk
):
    objects = {f"d{i % 3}/o{i:03d}": bytes([i % 251]) * (1000 + i) for i in range(120)}
    store = MemoryBackend(objects, read_delay=0.001)
    plan = [
        Planned(source=f"mem://{k}", rel=k, backend=store, key=k, size=len(v),
                etag=store._etags[k])
        for k, v in objects.items()
    ]  # fmt: skip
    monkeypatch.setattr(objget.batch, "plan_stream", lambda *a, **kw: iter(plan))
    cfg = DownloadConfig(max_workers=4, retry=no_wait_retry())
    full_disk.fill_at = 2  # the first objects are journaled done, then the disk is full
    with pytest.raises(CheckpointError, match="could not be written") as caught:
        objget.download_many("s3://b/p/", tmp_path, config=cfg)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    full_disk.full, full_disk.fill_at = False, 0  # space freed
    with Journal(str(tmp_path)) as j:  # closed by the failed run: its lock is free
        done = {k for k, r in j.rows().items() if r.state == "done"}
    assert 0 < len(done) < len(objects)
    for key in done:  # what the journal says is done is in place
        assert (tmp_path / key).read_bytes() == objects[key]
    result = objget.download_many("s3://b/p/", tmp_path, config=cfg)
    assert result.ok and len(result.objects) == len(objects)
    for key, data in objects.items():
        assert (tmp_path / key).read_bytes() == data
    assert not (tmp_path / ".objget-batch.db").exists()
