"""Start-up: the command line is read without argparse (`cli/_args.py`, issue 16). A download
and a usage error load neither argparse nor what its constructor pulls in (`gettext` for its
section titles, and `locale` through it: ~12 M instructions of an 8 MiB download's run); only
`--help` renders through argparse (`cli/_help.py`). Module sets in a fresh interpreter."""

from __future__ import annotations

import textwrap

from .test_import_cost import _loaded_after, _matching, _quiet_download

ARGPARSE = ("argparse", "gettext", "locale")


def test_a_download_reads_its_command_line_without_argparse(tmp_path):
    argv = '["-qj", "4", "--retries=3", "-H", "X-A: 1", url_of("bucket/blob"), out]'
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)", argv=argv)
    assert _matching(loaded, ARGPARSE) == []


def test_usage_errors_load_no_argparse():
    code = textwrap.dedent(
        """
        import contextlib, io
        from objget.cli import run
        for argv in (["-j", "0", "x"], ["--no-such", "x"], ["-qz", "x"], ["-qj"], [],
                     ["--restart=yes", "x"], ["x", "y", "z"]):
            with contextlib.redirect_stderr(io.StringIO()):
                assert run(argv) == 2, argv
        """
    )
    assert _matching(_loaded_after(code), ARGPARSE) == []


def test_only_the_help_renders_through_argparse():
    code = textwrap.dedent(
        """
        import contextlib, io
        from objget.cli import run
        with contextlib.redirect_stdout(io.StringIO()):
            assert run(["--help"]) == 0
        """
    )
    assert "argparse" in _loaded_after(code)
