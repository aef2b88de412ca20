"""PURE: `Progress`, a snapshot of one download, what a progress listener is given.

Its own module, imported when a download has a listener (the command's progress bar, a
callback of `download(on_progress=...)` or of the oss2 drop-in): a quiet download never
builds the class (`tests/unit/test_import_lazy.py`). `objget._models.Progress` and
`objget.Progress` name it too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Progress"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    """A snapshot of one download, for progress bars and callbacks.

    `done` counts bytes at the destination's temp file (resumed + fetched this run);
    `total` is None when the size is unknown.
    """

    total: int | None
    done: int
    resumed: int
    fetched: int
    elapsed: float
    rate: float
    workers: int
    retries: int

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or None when unknown."""
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)
