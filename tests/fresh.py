"""Run a snippet in a fresh interpreter: for tests whose point is what a new process imports,
compiles or logs (an import already made by the test session would hide it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def fresh(
    code: str, *, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) with this interpreter; with `ok`, assert it exited 0 (its stderr
    is the failure message)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc
