"""A batch on a full disk (a real tmpfs of a fixed size, filled to the last page).

- The disk fills while the batch runs: the journal's next commit fails (SQLite's "database or
  disk is full"). The journal is the batch's record of what is done, so the batch stops: exit 6
  (a local I/O error, as a single download's full disk) with one `objget: ` line that names the
  journal and what to do, no traceback. Every object the journal says is done is on disk and
  exact; once space is freed, the same command finishes every object exactly and fetches none
  of those again.
- The disk is full before the batch starts: the journal cannot be made; the same exit 6 and
  message, nothing downloaded.
- One object larger than the free space: that object fails on its own (kind `local`, exit 8),
  the others are downloaded; once there is room, the same command fetches only that one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._batch_store import (
    PREFIX,
    BatchStore,
    cli_args,
    journal_done,
    journal_lies,
    leftovers,
    objects,
    wrong_bytes,
)
from ._harness import kill, run, start, typed_error, wait_for
from ._mounts import resize_tmpfs, tmpfs
from .test_disk import fill

MiB = 1024 * 1024
JOURNAL_FULL = ("the batch journal", ".objget-batch.db", "could not be written", "free space",
                "run the same command again")  # fmt: skip


def journal_failed(dest: Path) -> dict[str, tuple[str, str]]:
    """The failed rows of the journal on `dest`: path -> (error kind, message)."""
    db = sqlite3.connect(str(dest / ".objget-batch.db"), timeout=5)
    try:
        query = "SELECT dest, error_kind, error FROM objects WHERE state='failed'"
        return {row[0]: (row[1], row[2]) for row in db.execute(query)}
    finally:
        db.close()


def complete(dest: Path, data: dict[str, bytes]) -> bool:
    every = all((dest / k[len(PREFIX) :]).is_file() for k in data)
    return every and wrong_bytes(dest, data) == 0 and not leftovers(dest)


def test_a_disk_that_fills_during_the_batch_stops_it_cleanly_and_a_rerun_finishes(
    tmp_path, summary
):
    data = objects(21, 90)
    with BatchStore(data, delay=0.02) as store, tmpfs(tmp_path / "fs", "48m") as fs:
        dest = fs / "out"
        log = tmp_path / "full.log"
        proc = start(cli_args(store, dest, "-j", "2"), log)
        try:
            assert wait_for(lambda: len(journal_done(dest)) >= 10, 60, proc=proc)
            filler = fill(fs)
            status = proc.wait(timeout=60)
        finally:
            kill(proc)
        text = log.read_text()
        done = journal_done(dest)
        lies, wrong = journal_lies(dest, data), wrong_bytes(dest, data)
        typed = status == 6 and "objget: " in text and "Traceback" not in text
        typed = typed and all(words in text for words in JOURNAL_FULL)
        filler.unlink()
        store.reset()
        again = run(cli_args(store, dest))
        fetched_again = {k for k in store.gets if k[len(PREFIX) :] in done}
        ok = again.rc == 0 and complete(dest, data) and not fetched_again
        summary.trial("batch: disk full mid-batch (journal), then freed", typed=typed and ok,
                      wrong_bytes=wrong, ckpt_lies=lies)  # fmt: skip
        assert typed, (status, text)
        assert lies == 0 and wrong == 0 and len(done) < len(data)
        assert ok, (again.rc, again.err, sorted(fetched_again))


def test_a_disk_full_before_the_batch_names_the_journal_and_downloads_nothing(tmp_path, summary):
    data = objects(22, 12)
    with BatchStore(data) as store, tmpfs(tmp_path / "fs", "4m") as fs:
        dest = fs / "out"
        dest.mkdir()
        filler = fill(fs)
        full = run(cli_args(store, dest))
        typed = typed_error(full, 6, *JOURNAL_FULL) and not store.gets
        filler.unlink()
        again = run(cli_args(store, dest))
        ok = again.rc == 0 and complete(dest, data)
        summary.trial("batch: disk full before the start (journal)", typed=typed and ok)
        assert typed, (full.rc, full.err, sorted(store.gets))
        assert ok, again.err


def test_an_object_larger_than_the_free_space_fails_alone(tmp_path, summary):
    data = objects(23, 12)
    big = f"{PREFIX}big.bin"
    data[big] = bytes(range(256)) * (12 * MiB // 256)  # mid-sized: the engine, one connection
    with BatchStore(data) as store, tmpfs(tmp_path / "fs", "8m") as fs:
        dest = fs / "out"
        first = run(cli_args(store, dest, "-j", "2"))
        failed = journal_failed(dest)
        typed = first.rc == 8 and "Traceback" not in first.err and list(failed) == ["big.bin"]
        typed = typed and failed["big.bin"][0] == "local" and "free" in failed["big.bin"][1]
        others = all((dest / k[len(PREFIX) :]).is_file() for k in data if k != big)
        typed = typed and others and (dest / ".objget-batch.db").exists()  # kept: one failed
        typed = typed and wrong_bytes(dest, data) == 0 and journal_lies(dest, data) == 0
        resize_tmpfs(fs, "64m")
        store.reset()
        again = run(cli_args(store, dest))
        ok = again.rc == 0 and complete(dest, data) and set(store.gets) == {big}
        summary.trial("batch: one object larger than the free space", typed=typed and ok)
        assert typed, (first.rc, first.err)
        assert ok, (again.rc, again.err, sorted(store.gets))
