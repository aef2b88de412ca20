"""The batch journal: one row per destination in `DIR/.objget-batch.db` (SQLite, WAL mode).

Why SQLite (standard library) and not an append-only log of our own:

- *Crash safety without our own framing.* A commit is atomic: a SIGKILL or power cut leaves
  the last committed state, never a torn record. An append-only log would need per-record
  CRCs, tail truncation on open, and compaction when re-runs pile records up.
- *O(changed rows) per update, O(log n) per lookup* with 100,000+ objects, no rewrite of the
  whole state and no need to hold it all in memory to answer "is this one done?".
- *Cheap commits.* In WAL mode with `synchronous=NORMAL` a commit is one `write()` to the WAL
  (no fsync); fsyncs happen at WAL checkpoints. A process crash loses nothing committed; a
  power cut may lose the last few commits — which only means those objects are looked at
  again (see `running` below), never that a wrong file is taken as done. On filesystems
  without shared-memory support for WAL (some network filesystems) SQLite keeps its rollback
  journal and we commit with `synchronous=FULL`.
- *Inspectable*: `sqlite3 DIR/.objget-batch.db 'select state, count(*) from objects group by 1'`.

States: `running` (written *before* the download starts, with the destination's inode and
mtime at that moment), `done` (size + ETag of what was written), `failed` (error kind and
message). A re-run that finds `running` and a destination that is now a different complete
file with no temp data beside it knows the earlier run committed it just before dying.

Only the driver thread writes; one exclusive `flock` on `DIR/.objget-batch.lock` keeps a
second batch on the same directory out (LockedError). A batch in which every object
succeeded removes the journal (`remove`); one with a failure keeps it.

A journal that fails (disk full, I/O error: SQLite's OperationalError, its lock's OSError) stops
the batch, its record, with a CheckpointError that says what to do; a failed commit rolls back.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3's C half: its dbapi2 adds datetime and the adapters (~7 M)
import contextlib
import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._exceptions import CheckpointError
from .._log import log
from ..engine._engine_face import DestLock, file_state, fsync_dir, remove_quietly

if TYPE_CHECKING:
    from ._batch_models import ObjectResult
    from ._batch_sources import Planned

__all__ = ["JOURNAL_NAMES", "LOCK_NAME", "Journal", "Row"]

JOURNAL_NAMES = (".objget-batch.db", ".objget-batch.db-wal", ".objget-batch.db-shm")
LOCK_NAME = ".objget-batch.lock"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    dest TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    size INTEGER,
    etag TEXT,
    version_id TEXT,
    pre_ino INTEGER,
    pre_mtime INTEGER,
    error TEXT,
    error_kind TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO info VALUES ('format', 'objget-batch-journal 1');
"""
_COLUMNS = "dest, source, state, size, etag, version_id, pre_ino, pre_mtime, error, error_kind"
# Every change of a row: the new state's columns, and one more attempt for a `running`
_PUT = (
    f"INSERT INTO objects ({_COLUMNS}, attempts, updated) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (dest) DO UPDATE SET source=excluded.source, state=excluded.state, "
    "size=excluded.size, etag=excluded.etag, version_id=excluded.version_id, "
    "pre_ino=excluded.pre_ino, pre_mtime=excluded.pre_mtime, error=excluded.error, "
    "error_kind=excluded.error_kind, updated=excluded.updated, "
    "attempts=objects.attempts + excluded.attempts"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One object's row, as read (`Journal.rows`) or to be written (`Journal.put`). A `running`
    row is committed before the download starts; its `pre` is the destination's (inode,
    mtime_ns) then, None when there was no file."""

    dest: str
    source: str
    state: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    pre: tuple[int, int] | None = None
    error: str | None = None
    error_kind: str | None = None

    @classmethod
    def running(cls, p: Planned, path: str, *, absent: bool = False) -> Row:
        """`p`'s `running` row, with what is at `path` now (`absent`: the caller knows
        nothing is)."""
        st = None if absent else file_state(path)
        pre = (st[0], st[1]) if st is not None else None
        return cls(dest=p.rel, source=p.source, state="running", size=p.size, etag=p.etag, pre=pre)

    @classmethod
    def outcome(cls, p: Planned, out: ObjectResult) -> Row | None:
        """The row that journals `out`: a failure's, or a finished object's `done` (None when
        its size is unknown)."""
        if out.status == "failed":
            return cls(dest=p.rel, source=p.source, state="failed", error=out.error or "",
                       error_kind=out.error_kind or "")  # fmt: skip
        version = out.result.version_id if out.result is not None else p.version_id
        if out.size is None:
            return None
        return cls(dest=p.rel, source=p.source, state="done", size=out.size, etag=out.etag,
                   version_id=version)  # fmt: skip


class Journal:
    """The journal of one destination directory; use as a context manager."""

    def __init__(self, directory: str, *, readonly: bool = False) -> None:
        self.path = os.path.join(directory, JOURNAL_NAMES[0])
        self._lock: DestLock | None = None
        self._db: sqlite3.Connection | None = None
        try:
            if readonly:  # a dry run: no journal yet, no rows
                if os.path.exists(self.path):
                    uri = f"file:{self.path}?mode=ro"
                    self._db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
                return
            lock = os.path.join(directory, LOCK_NAME)
            self._lock = DestLock(lock, dest=directory, source="batch journal")
            self._lock.acquire()
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            sync = "NORMAL" if str(mode).lower() == "wal" else "FULL"
            self._db.execute(f"PRAGMA synchronous={sync}")
            self._db.executescript(_SCHEMA)
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.Error | OSError):  # not LockedError: no OSError
                raise _failed(self.path, exc) from exc
            raise

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.release(remove=False)
            self._lock = None

    @property
    def writable(self) -> bool:
        """Open for writing (not read-only, not closed)."""
        return self._db is not None and self._lock is not None

    def remove(self) -> None:
        """After a batch in which every object succeeded (each durable already): close the
        database and remove it, its side files and the lock, so DIR holds only the objects
        (the order, for a power cut: docs/batch.md, "What is left in DIR"). The WAL goes
        before the database: SQLite would replay an old WAL into a new one. The lock goes last;
        a batch that opened it meanwhile finds it unlinked (`DestLock`'s inode check) and starts
        a new journal. An OSError is logged, not raised: the objects are durable, a journal
        left behind only costs the next run a look at it."""
        if self._db is None or self._lock is None:
            raise CheckpointError("the batch journal is closed or read-only")
        self._db.close()  # a WAL database is checkpointed into the main file, fsynced
        self._db = None
        directory = os.path.dirname(self.path)
        try:
            for side in (*JOURNAL_NAMES[1:], f"{JOURNAL_NAMES[0]}-journal"):
                remove_quietly(os.path.join(directory, side))
            fsync_dir(directory)
            remove_quietly(self.path)
        except OSError as exc:
            log.warning("could not remove the batch journal %s: %s", self.path, exc)
            self.close()
            return
        self._lock.release(remove=True)
        self._lock = None
        try:
            fsync_dir(directory)
        except OSError as exc:
            log.warning("could not fsync %s after removing the batch journal: %s", directory, exc)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group the updates (or reads) of the block into one commit, rolled back if the
        block or the commit fails. SQLite's errors: `_failed`'s."""
        db = self._db
        if db is None:
            raise CheckpointError("the batch journal is closed or read-only")
        try:
            db.execute("BEGIN")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back itself (a full disk)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _failed(self.path, exc) from exc

    def rows(self) -> dict[str, Row]:
        """Every row, by destination (relative path)."""
        if self._db is None:
            return {}
        out: dict[str, Row] = {}
        with self.transaction() as db:
            for r in db.execute(f"SELECT {_COLUMNS} FROM objects"):  # noqa: S608
                pre = (int(r[6]), int(r[7])) if r[6] is not None and r[7] is not None else None
                out[r[0]] = Row(
                    dest=r[0], source=r[1], state=r[2], size=r[3], etag=r[4], version_id=r[5],
                    pre=pre, error=r[8], error_kind=r[9],
                )  # fmt: skip
        return out

    def put(self, rows: list[Row]) -> None:
        """Write `rows` as they are, in one commit; each `running` one counts one more
        attempt."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(_PUT, [
                (r.dest, r.source, r.state, r.size, r.etag, r.version_id,
                 *(r.pre or (None, None)), r.error, r.error_kind, int(r.state == "running"), now)
                for r in rows
            ])  # fmt: skip


def _failed(path: str, exc: sqlite3.Error | OSError) -> CheckpointError:
    """The journal at `path` failed with `exc` (see "A journal that fails" above)."""
    what = f"could not be written ({exc.strerror if isinstance(exc, OSError) else exc})"
    full = "full" in what or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    todo = (f"{'free space on its disk' if full else 'fix that'}, then run the same command "
            "again: it resumes, and the objects already done are not fetched again")  # fmt: skip
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        what = f"is unusable ({exc})"
        todo = "delete it to start the batch over (finished files are then checked again)"
    return CheckpointError(f"the batch journal {path} {what}; {todo}", dest=os.path.dirname(path))
