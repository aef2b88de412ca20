"""Running the CLI as a subprocess and judging a trial: the destination, the checkpoint, the
exit code.

The three checks every trial makes:
- the destination is absent, unchanged, or byte-identical to the source (`dest_wrong_bytes`);
- every byte the checkpoint claims is on disk in the temp file, equal to the source
  (`ckpt_lies` reads the claimed spans of `.objget-part` and compares them);
- the exit code is the documented one, with one `objget: ` message and no traceback
  (`typed_error`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from objget.engine import _checkpoint as ck

__all__ = [
    "MiB",
    "Run",
    "ckpt_done",
    "ckpt_lies",
    "cli",
    "dest_wrong_bytes",
    "kill",
    "run",
    "same",
    "served_bytes",
    "start",
    "typed_error",
    "wait_for",
]

MiB = 1024 * 1024
_CHUNK = 8 * MiB
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


def cli(*args: object) -> list[str]:
    """The objget command line (`python -m objget ARGS`)."""
    return [sys.executable, "-m", "objget", *(str(a) for a in args)]


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def run(
    args: Sequence[object],
    *,
    prefix: Sequence[str] = (),
    timeout: float = 180,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Run:
    """Run objget (optionally under `prefix`, e.g. strace) to its end."""
    done = subprocess.run(
        [*prefix, *cli(*args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
        preexec_fn=preexec_fn,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def start(
    args: Sequence[object],
    log: Path,
    *,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start objget in its own session, stdout and stderr to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*prefix, *cli(*args)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or ENV,
            start_new_session=True,
        )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> int:
    """Signal the process group of `proc` and reap it; returns its exit status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    return proc.wait(timeout=60)


def wait_for(
    predicate: Callable[[], bool], timeout: float, *, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """Poll until `predicate()`; False on timeout or when `proc` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(0.02)
    return False


def ckpt_done(dest: Path) -> int:
    """Bytes the checkpoint beside `dest` claims (0 when none or unusable)."""
    try:
        saved = ck.load(f"{dest}.objget-ckpt")
    except (ck.CheckpointInvalid, OSError):
        return 0
    return 0 if saved is None else sum(s.stop - s.start for s in saved.spans)


def _diff(a: bytes, b: bytes) -> int:
    if a == b:
        return 0
    n = min(len(a), len(b))
    return sum(1 for i in range(n) if a[i] != b[i]) + abs(len(a) - len(b))


def ckpt_lies(dest: Path, source: Path, ckpt: Path | None = None) -> int:
    """Bytes the checkpoint claims that are not in `.objget-part` as they are in `source`.

    A checkpoint objget would not use claims nothing: unreadable, corrupt, other version,
    or one whose temp file is missing or shorter than its last span (objget checks that and
    starts over).
    """
    path = str(ckpt) if ckpt is not None else f"{dest}.objget-ckpt"
    try:
        saved = ck.load(path)
    except (ck.CheckpointInvalid, OSError):
        return 0
    if saved is None or not saved.spans:
        return 0
    part = Path(f"{dest}.objget-part")
    if part.is_symlink() or not part.is_file() or part.stat().st_size < saved.spans[-1].stop:
        return 0
    lies = 0
    with open(part, "rb") as p, open(source, "rb") as s:
        for span in saved.spans:
            pos = span.start
            while pos < span.stop:
                n = min(_CHUNK, span.stop - pos)
                p.seek(pos)
                s.seek(pos)
                got, want = p.read(n), s.read(n)
                lies += _diff(got, want) if len(got) == len(want) else n
                pos += n
    return lies


def dest_wrong_bytes(dest: Path, source: Path, before: bytes | None = None) -> int:
    """0 when `dest` is absent (or holds `before`, what it held before the trial) or is
    byte-identical to `source`; else the number of wrong bytes there."""
    if not os.path.lexists(dest):
        return 0 if before is None else len(before)
    if dest.is_symlink() or not dest.is_file():
        return max(1, source.stat().st_size)
    if before is not None and dest.stat().st_size == len(before) and dest.read_bytes() == before:
        return 0
    wrong = abs(dest.stat().st_size - source.stat().st_size)
    with open(dest, "rb") as d, open(source, "rb") as s:
        while True:
            a, b = d.read(_CHUNK), s.read(_CHUNK)
            if not a or not b:
                break
            wrong += _diff(a, b[: len(a)]) if len(a) <= len(b) else _diff(a[: len(b)], b)
    return wrong


def same(dest: Path, source: Path) -> bool:
    return os.path.isfile(dest) and not dest.is_symlink() and dest_wrong_bytes(dest, source) == 0


def typed_error(result: Run, code: int, *needles: str) -> bool:
    """Exit `code`, an `objget: ` message containing every needle, no traceback."""
    text = result.err
    return (
        result.rc == code
        and "objget: " in text
        and "Traceback" not in text
        and all(n in text for n in needles)
    )


_LOG_BYTES = re.compile(r'" (\d{3}) (\d+) ')


def served_bytes(log: Path, skip: int = 0) -> tuple[int, int]:
    """(body bytes nginx sent, number of log lines) after the first `skip` lines."""
    if not log.exists():
        return 0, 0
    lines = log.read_text().splitlines()
    total = sum(int(m.group(2)) for line in lines[skip:] if (m := _LOG_BYTES.search(line)))
    return total, len(lines)


_STRACE_LINE = re.compile(r"^(\d+)\s+(\w+)\(")


def count_calls(log: Path, syscalls: Sequence[str]) -> dict[str, int]:
    """Per syscall of `syscalls` in an `strace -f` log: the most calls any one thread made
    (strace counts `inject=...:when=N` per thread)."""
    per_thread: Counter[tuple[str, int]] = Counter()
    for line in log.read_text().splitlines():
        m = _STRACE_LINE.match(line)
        if m and m.group(2) in syscalls:
            per_thread[(m.group(2), int(m.group(1)))] += 1
    out: dict[str, int] = {}
    for (name, _), n in per_thread.items():
        out[name] = max(out.get(name, 0), n)
    return out


def sample(n: int, k: int) -> list[int]:
    """`k` invocation numbers spread over 1..n (all when n <= k)."""
    if n <= k:
        return list(range(1, n + 1))
    return sorted({1 + round(i * (n - 1) / (k - 1)) for i in range(k)})
