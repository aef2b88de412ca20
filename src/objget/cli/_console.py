"""Terminal output of the CLI: the rich progress bar, summaries, sizes. Only the CLI uses this.

rich is imported only when something is shown (a progress bar, a message on stderr): a quiet
download (`-q`, `--json`) that succeeds never loads it, which keeps the command's start fast.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import NoReturn, TypeVar

    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, TaskID

    from .._models import DownloadResult
    from .._models import Progress as Snapshot

__all__ = ["LiveBar", "ProgressBar", "Stderr", "counted", "format_size", "parse_size", "summary"]

_SIZE = r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$"  # compiled at its first use
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """`8M`, `512k`, `1.5G`, `64MiB`, `1048576` → bytes (binary multiples, as curl does)."""
    m = re.match(_SIZE, text)
    if m is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 8M, 512K, 1G or a byte count)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    return int(value)


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def summary(result: DownloadResult) -> str:
    if result.skipped:
        return (
            f"Skipped {result.path}: already up to date ({format_size(result.size)}, the "
            "object's size and Last-Modified); nothing fetched"
        )
    rate = result.bytes_fetched / result.elapsed if result.elapsed > 0 else 0.0
    parts = [
        f"Downloaded {format_size(result.size)} to {result.path} in {result.elapsed:.2f} s "
        f"({format_size(rate)}/s)"
    ]
    if result.bytes_resumed and result.resumed_from:
        parts.append(
            f"resumed {format_size(result.bytes_resumed)} from a checkpoint made with another "
            f"URL ({result.resumed_from}; now {result.source}: the same size, ETag and "
            f"Last-Modified), fetched {format_size(result.bytes_fetched)}"
        )
    elif result.bytes_resumed:
        parts.append(
            f"resumed {format_size(result.bytes_resumed)} from an earlier run, "
            f"fetched {format_size(result.bytes_fetched)}"
        )
    parts.append(
        f"{counted(result.retries, 'retry', 'retries')}, up to {counted(result.workers, 'stream')}"
    )
    parts.append("verified: " + ", ".join(result.verified))
    if not result.resumable:
        parts.append("the server does not support ranges: one stream, not resumable")
    return "; ".join(parts)


class Stderr:
    """The CLI's stderr console, made (and rich imported) on first use."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, soft_wrap=True)
        return self._console

    def print(self, *parts: str | tuple[str, str], highlight: bool | None = None) -> None:
        """Print `parts` as one line: plain strings and (text, style) pairs, as in
        `rich.text.Text.assemble` (no markup or emoji codes are read in them)."""
        from rich.text import Text

        self.console.print(Text.assemble(*parts), highlight=highlight)

    def error(self, message: str) -> None:
        """`objget: MESSAGE`, the prefix in bold red: how the command reports an error."""
        self.print(("objget: ", "bold red"), message, highlight=False)

    def fail(self, message: str, code: int) -> NoReturn:
        """Report the error that ends the command, and exit with `code`."""
        self.error(message)
        sys.exit(code)


def byte_progress(console: Console, *extra: ProgressColumn) -> Progress:
    """A rich Progress with the columns every objget bar has (name, bar, bytes, speed, ETA),
    then `extra`. rich.progress is imported here, when a bar is shown."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        # styles instead of markup: rendering markup loads rich's emoji table (~4 ms), and a
        # file name with brackets would be read as markup
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        *extra,
        console=console,
        transient=False,
    )


if TYPE_CHECKING:  # a TypeVar bound by name makes a ForwardRef, whose compile() at import
    # builds every `ast` node class (~9 M instructions of `import objget.cli`, as --help pays)
    _Bar = TypeVar("_Bar", bound="LiveBar")


class LiveBar:
    """A rich `Progress` shown while the `with` block runs: the base of the single-object bar
    and the batch's. `_closing()` runs just before the display stops (its last render)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def __enter__(self: _Bar) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing()
        self._progress.__exit__(exc_type, exc, tb)

    def _closing(self) -> None:
        """Nothing to tidy by default."""


class ProgressBar(LiveBar):
    """A rich progress bar fed with `Progress` snapshots (bytes, speed, ETA, resumed,
    retries, streams). Called from the downloader's main thread only."""

    def __init__(self, console: Console, label: str) -> None:
        from rich.progress import TextColumn

        super().__init__(byte_progress(console, TextColumn("{task.fields[extra]}", markup=False)))
        self._console = console
        self._task: TaskID | None = None
        self._label = label

    def __call__(self, snap: Snapshot) -> None:
        if self._task is None:
            self._task = self._progress.add_task(self._label, total=snap.total, extra="")
        extra = [counted(snap.workers, "stream")]
        if snap.resumed:
            extra.append(f"resumed {format_size(snap.resumed)}")
        if snap.retries:
            extra.append(counted(snap.retries, "retry", "retries"))
        self._progress.update(
            self._task, total=snap.total, completed=snap.done, extra=", ".join(extra)
        )


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 stream`, `4 streams`, `0 retries`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
