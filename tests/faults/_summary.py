"""Per-class records of the faults tier and the table printed at the end of the run.

Every trial of every test adds one record: did it end in a byte-identical final file, or in
the documented typed error (exit code + one clear message, destination absent or unchanged),
how many bytes at the destination were wrong, and how many bytes a checkpoint claimed that
were not on disk. The last two must be 0; a trial that is neither correct nor a clean typed
error fails its test (and shows up here as `trials > correct + typed`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["ClassRecord", "Summary"]


@dataclass
class ClassRecord:
    name: str
    trials: int = 0
    correct: int = 0
    typed: int = 0
    wrong_bytes: int = 0
    ckpt_lies: int = 0
    notes: list[str] = field(default_factory=list)


class Summary:
    """Collects records from the tests of one session (thread-safe, insertion-ordered)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, ClassRecord] = {}

    def _row(self, name: str) -> ClassRecord:
        row = self._rows.get(name)
        if row is None:
            row = self._rows[name] = ClassRecord(name)
        return row

    def trial(
        self,
        name: str,
        *,
        correct: bool = False,
        typed: bool = False,
        wrong_bytes: int = 0,
        ckpt_lies: int = 0,
    ) -> None:
        """One trial of fault class `name`: it ended `correct` (byte-identical final file)
        or `typed` (the documented error, nothing wrong at the destination)."""
        with self._lock:
            row = self._row(name)
            row.trials += 1
            row.correct += bool(correct)
            row.typed += bool(typed) and not correct
            row.wrong_bytes += wrong_bytes
            row.ckpt_lies += ckpt_lies

    def note(self, name: str, text: str) -> None:
        with self._lock:
            self._row(name).notes.append(text)

    def empty(self) -> bool:
        return not self._rows

    def table(self) -> str:
        """A Markdown table plus the notes, one line each."""
        head = (
            "| fault class | trials | correct final file | clean typed error "
            "| wrong bytes at dest (must be 0) | ckpt bytes not on disk (must be 0) |"
        )
        lines = [head, "|---|---:|---:|---:|---:|---:|"]
        with self._lock:
            rows = list(self._rows.values())
        total = ClassRecord("**total**")
        for r in rows:
            lines.append(
                f"| {r.name} | {r.trials} | {r.correct} | {r.typed} | {r.wrong_bytes} "
                f"| {r.ckpt_lies} |"
            )
            total.trials += r.trials
            total.correct += r.correct
            total.typed += r.typed
            total.wrong_bytes += r.wrong_bytes
            total.ckpt_lies += r.ckpt_lies
        lines.append(
            f"| {total.name} | {total.trials} | {total.correct} | {total.typed} "
            f"| {total.wrong_bytes} | {total.ckpt_lies} |"
        )
        notes = [f"- {r.name}: {n}" for r in rows for n in r.notes]
        if notes:
            lines += ["", *notes]
        return "\n".join(lines)
