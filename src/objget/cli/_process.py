"""The command's process: the collector paused while it starts, and an exit without the
interpreter's teardown. Used by `main()`, the console-script entry, only: the command run
in-process (`run(argv)`, the tests) keeps the interpreter's own behaviour.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["exit_now", "pause_gc", "resume_gc"]

_gc_paused = False


def pause_gc() -> None:
    """Start-up makes some 20,000 objects that all live until the exit: the collector's young
    collections over them find nothing (a dozen while the download's modules load, ~2 ms of
    an 8 MiB download's ~0.1 s). Paused until those modules are in (`resume_gc`)."""
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Collect again, the start-up's objects moved out of the collector's way for good
    (`gc.freeze`: later collections skip them). Only undoes `pause_gc`: the command run
    in-process by a program that turned the collector off leaves it off."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


def exit_now(code: object) -> NoReturn:
    """Exit without the interpreter's teardown of every module and object (~50-100 ms here,
    longer than a whole 8 MiB download): atexit handlers run, the output streams are flushed,
    the data is already synced and every file closed. With another thread still alive (nothing
    of objget's at this point) the normal exit runs instead, which waits for it."""
    if threading.active_count() > 1:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # its descriptor was closed when Python started
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # what CPython's own exit does when the flush fails
    os._exit(status)
