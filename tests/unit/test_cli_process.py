"""The console entry pauses the cyclic garbage collector while the command loads its modules
(`cli/_process.py`), and only then: the download runs with it on, and the command run
in-process leaves the caller's setting as it found it."""

from __future__ import annotations

import socket
import textwrap

from ..fresh import fresh

REPORT = (
    "import atexit, gc\natexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 0))\n"
)


def _refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the download fails at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"


def test_main_collects_again_once_the_download_modules_are_loaded(tmp_path):
    argv = ["-q", "--retries", "1", _refused_url(), str(tmp_path / "out")]
    code = REPORT + f"import sys\nsys.argv = ['objget', *{argv!r}]\n"
    proc = fresh(code + "from objget.cli import main\nmain()\n", ok=False)
    assert proc.returncode == 5, proc.stderr  # network: nothing listens
    assert proc.stdout.split() == ["True", "True"]  # on again, the start-up's objects frozen


def test_main_pauses_the_collector_while_it_starts():
    code = REPORT + "import sys\nsys.argv = ['objget', '--no-such-option']\n"
    proc = fresh(code + "from objget.cli import main\nmain()\n", ok=False)
    assert proc.returncode == 2
    assert proc.stdout.split() == ["False", "False"]  # a usage error exits before the imports


def test_the_command_in_process_keeps_the_callers_setting(tmp_path):
    argv = ["-q", "--retries", "1", _refused_url(), str(tmp_path / "out")]
    for setting in ("enable", "disable"):
        code = textwrap.dedent(
            f"""
            import gc
            gc.{setting}()
            from objget.cli import run
            code = run({argv!r})
            assert code == 5, code
            print(gc.isenabled(), gc.get_freeze_count())
            """
        )
        proc = fresh(code, ok=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [str(setting == "enable"), "0"]
