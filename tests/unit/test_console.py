"""The CLI's terminal output (`_console`): the single-object progress bar rendered to a string
(it shares its `with` handling, `LiveBar`, with the batch's bar: tests/unit/test_batch_bar.py)
and the one way the command reports the error that ends it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from objget._models import Progress
from objget.cli._console import ProgressBar, Stderr


def _snap(done: int, *, resumed: int = 0, retries: int = 0) -> Progress:
    return Progress(
        total=2048, done=done, resumed=resumed, fetched=done - resumed, elapsed=1.0,
        rate=1024.0, workers=2, retries=retries,
    )  # fmt: skip


def test_the_bar_shows_the_last_snapshot_once_closed():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with ProgressBar(console, "objget") as bar:
        bar(_snap(1024, resumed=512))
        bar(_snap(2048, resumed=512, retries=1))
    text = out.getvalue()
    assert text.startswith("objget ")
    assert "2.0/2.0 KiB" in text
    assert "2 streams, resumed 512 B, 1 retry" in text


def test_an_error_inside_the_block_still_stops_the_display():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    bar = ProgressBar(console, "objget")
    try:
        with bar:
            bar(_snap(1024))
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not bar._progress.live.is_started
    assert "1.0/2.0 KiB" in out.getvalue()


def test_an_error_ends_the_command_with_its_code_and_the_red_prefix(capsys):
    err = Stderr()
    with pytest.raises(SystemExit) as stop:
        err.fail("gone: oss://b/k", 3)
    assert stop.value.code == 3
    assert capsys.readouterr().err == "objget: gone: oss://b/k\n"


def test_the_stream_summary_counts_as_the_download_summary_does():
    from objget._models import DownloadResult
    from objget.cli._cli_stream import stream_summary

    base = {
        "source": "s3://bkt/k", "path": "-", "size": 2048, "etag": None, "version_id": None,
        "elapsed": 1.0, "bytes_resumed": 0,
    }  # fmt: skip
    one = DownloadResult(**base, bytes_fetched=2048, retries=1, workers=1, verified=("size",))
    text = stream_summary(one)
    assert "; 1 retry, up to 1 stream; verified: size" in text
    many = DownloadResult(**base, bytes_fetched=2048, retries=0, workers=4, verified=("size",))
    assert "; 0 retries, up to 4 streams;" in stream_summary(many)
