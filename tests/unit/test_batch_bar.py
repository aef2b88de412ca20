"""The batch's progress bar (`_cli_batch.BatchBar`) rendered to a string."""

from __future__ import annotations

import io

from rich.console import Console

from objget.cli._cli_batch import BatchBar
from objget.many._batch_models import ActiveObject, BatchProgress


def _render(*snaps: BatchProgress) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    with BatchBar(console) as bar:
        for snap in snaps:
            bar(snap)
    return out.getvalue()


def _snap(total: int, done: int, *active: ActiveObject) -> BatchProgress:
    return BatchProgress(
        objects_total=3, objects_done=1, objects_failed=0, objects_skipped=0,
        bytes_total=total, bytes_done=done, elapsed=0.5, active=active,
    )  # fmt: skip


def test_known_sizes_show_done_of_total():
    text = _render(_snap(3 * 1024 * 1024, 1024 * 1024))
    assert "1/3 objects" in text
    assert "1.0/3.0 MiB" in text


def test_unknown_sizes_show_no_total_rather_than_zero():
    text = _render(_snap(0, 5 * 1024 * 1024, ActiveObject(path="a/[x].bin", done=1024, total=None)))
    assert "5.0/? MiB" in text
    assert "/0 bytes" not in text


def test_the_active_lines_are_hidden_once_the_batch_ends():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    active = ActiveObject(path="dir/still-running.bin", done=1024, total=4096)
    with BatchBar(console) as bar:
        bar(_snap(3 * 1024 * 1024, 1024 * 1024, active))
    text = out.getvalue()
    assert "1/3 objects" in text
    assert "still-running.bin" not in text  # the final render shows the overall bar only
