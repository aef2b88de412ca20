"""The console entry's fast exit (`objget.cli.main`, no interpreter teardown) keeps exit
statuses, flushes output and still runs atexit handlers."""

from __future__ import annotations

import subprocess
import textwrap

from ..fresh import fresh


def _main(argv: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = prelude + textwrap.dedent(
        f"""
        import sys
        sys.argv = ["objget", *{argv!r}]
        from objget.cli import main
        main()
        """
    )
    return fresh(code, ok=False)


def test_help_is_flushed_with_status_0():
    proc = _main(["--help"])
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("Usage: objget")
    assert "--help" in proc.stdout  # the whole text, flushed before the exit


def test_a_usage_error_keeps_status_2_and_its_message():
    proc = _main(["--no-such-option"])
    assert proc.returncode == 2
    assert "No such option" in proc.stderr


def test_atexit_handlers_still_run():
    prelude = "import atexit\natexit.register(lambda: print('atexit ran', flush=True))\n"
    proc = _main(["--help"], prelude)
    assert proc.returncode == 0
    assert proc.stdout.rstrip().endswith("atexit ran")


def test_a_live_thread_gets_the_normal_exit_that_waits_for_it():
    prelude = textwrap.dedent(
        """
        import threading, time
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
        """
    )
    proc = _main(["--help"], prelude)
    assert proc.returncode == 0
    assert "thread done" in proc.stdout
