"""`objget SOURCE -`: the object to stdout, in order; everything else goes to stderr.

stdout carries the object's bytes and nothing else: the progress bar, the summary, messages
and `--json` (the result object) go to stderr. Exit codes are the command's; a reader that
closes the pipe early (`| head -c 100`) ends objget quietly the way it ends `cat`: by SIGPIPE
(the shell reports 141), with nothing printed. A stream cannot resume: after a failure the
message says how many bytes the reader already got, and a rerun starts again from byte 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import NoReturn

from .._config import DownloadConfig
from .._exceptions import DownloadError, IntegrityError, RetriesExhausted, TransportError
from .._exit import EXIT, HANDLED, describe, exit_code
from .._models import DownloadResult
from ..backends import BackendOptions
from ..engine._downloader import Downloader, ProgressListener
from ..engine._stream import StreamDownload
from ._args import UsageError
from ._console import ProgressBar, Stderr, counted, format_size

__all__ = ["run_stream"]


def run_stream(
    err: Stderr,
    source: str,
    config: DownloadConfig,
    options: BackendOptions,
    version_id: str | None,
    as_json: bool,
    quiet: bool,
    batch: bool,
) -> NoReturn:
    """Stream one object to stdout and exit with the command's exit code."""
    if batch:
        raise UsageError("DEST - (stdout) takes one object; a batch needs a directory")
    if config.skip_existing:
        raise UsageError("--skip-existing needs a file to compare with, not DEST -")
    try:  # None when descriptor 1 was closed at start: a socket may hold that number now
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        err.fail("DEST -: stdout is not open", EXIT["local"])
    with Downloader(config=config, options=options) as dl:
        job = StreamDownload(dl, fd)
        try:
            if quiet or as_json:
                result = _run(job, source, None, version_id)
            else:
                with ProgressBar(err.console, "objget") as bar:
                    result = _run(job, source, bar, version_id)
        except IntegrityError as exc:  # the message says the bytes sent are bad
            err.fail(str(exc), EXIT["integrity"])
        except HANDLED as exc:  # the command's table (_exit.py), in a stream's words
            _die(err, job, _describe(exc), exit_code(exc))
    if as_json:
        print(json.dumps(result.to_dict(), indent=2), file=sys.stderr, flush=True)
    elif not quiet:
        err.print(stream_summary(result), highlight=False)
    sys.exit(EXIT["ok"])


def _run(
    job: StreamDownload, source: str, bar: ProgressListener | None, version_id: str | None
) -> DownloadResult:
    try:
        return job.run(source, on_progress=bar, version_id=version_id)
    except BrokenPipeError:
        _die_of_sigpipe()  # at once: not even the progress bar's last line


def stream_summary(result: DownloadResult) -> str:
    rate = result.bytes_fetched / result.elapsed if result.elapsed > 0 else 0.0
    streams = counted(result.workers, "stream")
    retries = counted(result.retries, "retry", "retries")
    return (
        f"Streamed {format_size(result.size)} to stdout in {result.elapsed:.2f} s "
        f"({format_size(rate)}/s); {retries}, up to {streams}; verified: "
        + ", ".join(result.verified)
    )


def _describe(exc: BaseException) -> str:
    """`describe`, without the promise of a resume a stream cannot keep."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, TransportError | RetriesExhausted):
        return str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, DownloadError):
        return f"cannot write to stdout: {exc.strerror or exc}"
    return describe(exc)


def _die(err: Stderr, job: StreamDownload, message: str, code: int) -> NoReturn:
    """A failed stream: say what the reader got; there is nothing to resume."""
    if job.sent:
        message += (
            f"\nthe stream is incomplete: stdout got the first {job.sent} bytes "
            f"({format_size(job.sent)}); a stream cannot resume: run again to start over"
        )
    err.fail(message, code)


def _die_of_sigpipe() -> NoReturn:
    """The reader went away: end as a filter does, killed by SIGPIPE (Python ignores the
    signal, so the write failed with EPIPE instead), quietly and at once."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})
        os.kill(os.getpid(), signal.SIGPIPE)
    finally:
        os._exit(128 + signal.SIGPIPE)
