"""The durable checkpoint save of one download: the one order that keeps it honest, and the
latch that stops it after a failed sync. The single-object Downloader and a Ray range task
both save through it.

Order: take the snapshot of the written spans, then `fdatasync` the data file, then write the
checkpoint atomically (temp → fsync → replace → fsync dir, `_checkpoint.save`). The snapshot
comes first: bytes the workers write while the sync runs may not be on the disk when it
returns, and the checkpoint must not claim them.

Latch: after a failed `fdatasync` the kernel may have dropped the dirty pages (and marked them
clean), so a second `fdatasync` can "succeed" with those bytes lost. Once one failed, this
saver writes no checkpoint again: the last one written before the failure stays the record.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .._log import log
from . import _checkpoint as ck
from ._plan import Span

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._checkpoint_record import Checkpoint

__all__ = ["DurableSaver", "SaverThread", "save_quietly"]


class DurableSaver:
    """`saver()` saves one durable checkpoint of the spans `view()` returns (with the number of
    the scheduler's last commit they include), built into a record by `record(spans)`; raises
    the OSError of a failed sync (once, then does nothing). `on_saved(seq)` runs once the
    checkpoint is on disk (the live record then drops what it covers); `on_sync_failed` when
    the sync fails (e.g. to drop a live record that trusts the same pages)."""

    __slots__ = ("_failed", "_fd", "_on_saved", "_on_sync_failed", "_path", "_record", "_view")

    def __init__(
        self,
        fd: int,
        path: str,
        *,
        view: Callable[[], tuple[tuple[Span, ...], int]],
        record: Callable[[tuple[Span, ...]], Checkpoint],
        on_saved: Callable[[int], None] | None = None,
        on_sync_failed: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._path = path
        self._view = view
        self._record = record
        self._on_saved = on_saved
        self._on_sync_failed = on_sync_failed
        self._failed = False

    @property
    def sync_failed(self) -> bool:
        """True once an fdatasync of the data file failed: nothing is saved any more."""
        return self._failed

    def __call__(self) -> None:
        if self._failed:
            return
        snapshot, seq = self._view()  # before the sync: only bytes written by now are claimed
        try:
            os.fdatasync(self._fd)
        except OSError:
            self._failed = True
            if self._on_sync_failed is not None:
                self._on_sync_failed()
            raise
        ck.save(self._path, self._record(snapshot))
        if self._on_saved is not None:
            self._on_saved(seq)


def save_quietly(save: Callable[[], None]) -> bool:
    """`save()` on the way out of a failed run: a failure is logged, not raised (the run's
    own error is the one to report). True when it saved (or had nothing to do)."""
    try:
        save()
    except OSError as exc:
        log.warning("could not save the checkpoint: %s", exc)
        return False
    return True


class SaverThread:
    """Runs one download's durable saves on a thread of their own, one at a time, so the disk
    wait never stalls the engine's main loop. `request()` queues a save (the thread starts at
    the first); `busy` is true while one is queued or running. A failing save is handed to
    `on_error` and ends the thread."""

    __slots__ = ("_busy", "_cancel", "_due", "_on_error", "_save", "_thread")

    def __init__(
        self,
        save: Callable[[], None],
        *,
        cancel: threading.Event,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._save = save
        self._cancel = cancel
        self._on_error = on_error
        self._due = threading.Event()
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._busy

    def request(self) -> None:
        self._busy = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="objget-saver")
            self._thread.start()
        self._due.set()

    def _loop(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._cancel.is_set():
                return
            try:
                self._save()
            except BaseException as exc:
                self._on_error(exc)
                return
            finally:
                self._busy = False

    def release(self) -> None:
        """Wake the thread so it ends (the caller has set `cancel`), and wait for a save in
        progress: the caller saves once more, and two saves at once would race on the
        checkpoint's temp file. A Ctrl-C during this wait does not cut it short (a save is a
        bounded disk operation); it is re-raised."""
        thread = self._thread
        if thread is None:
            return
        self._due.set()
        interrupted: KeyboardInterrupt | None = None
        while thread.is_alive():
            try:
                thread.join(timeout=1.0)
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted
