"""Run one command once and measure it: wall time, timed part, peak RSS, client and server CPU.

Every command runs under `/usr/bin/time -f "%M %U %S"` in its own session (so the resume scenario
can SIGKILL the whole process group). Client CPU is the rusage of the waited child, which includes
all its reaped descendants; server CPU is read from /proc/<pid>/stat of the server's process tree
before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")
TIME_BIN = "/usr/bin/time"


@dataclass(kw_only=True)
class Measurement:
    returncode: int | None
    wall: float
    seconds: float | None  # timed part reported by the tool (peer runner) or the wall time
    rss_kib: int | None
    client_cpu: float | None
    server_cpu: float | None
    other_cpu: float | None = None  # busy CPU of the machine minus client and server: noise
    error: str = ""
    report: dict[str, Any] = field(default_factory=dict)  # JSON the peer runner printed

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.error


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(entry))
    return kids


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """user+sys seconds of each pid and all its live descendants (threads included)."""
    kids = _children_map()
    todo = list(pids)
    seen: set[int] = set()
    ticks = 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        ticks += int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
        todo.extend(kids.get(pid, []))
    return ticks / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLK_TCK


def _parse_time_file(path: Path) -> tuple[int | None, float | None]:
    try:
        lines = path.read_text().strip().splitlines()
    except OSError:
        return None, None
    for line in reversed(lines):
        parts = line.split()
        if len(parts) == 3:
            try:
                return int(parts[0]), float(parts[1]) + float(parts[2])
            except ValueError:
                continue
    return None, None


def _last_json(text: str) -> dict[str, Any]:
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                loaded = json.loads(line)
                if isinstance(loaded, dict):
                    return loaded
    return {}


def run_command(
    cmd: list[str],
    *,
    env: dict[str, str],
    timeout: float,
    workdir: Path,
    server_pids: Iterable[int] = (),
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    timed_by_tool: bool = False,
) -> Measurement:
    """Run `cmd` once under /usr/bin/time and measure it. Never raises for a failing command."""
    server_pids = list(server_pids)
    time_file = workdir / "time.out"
    time_file.unlink(missing_ok=True)
    full = [TIME_BIN, "-f", "%M %U %S", "-o", str(time_file), *cmd]
    server_before = tree_cpu_seconds(server_pids) if server_pids else None
    busy_before = machine_busy_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        full,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if on_start is not None:
        on_start(proc)
    error = ""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        out, err = proc.communicate(timeout=30)
        error = f"timeout after {timeout:.0f}s"
    wall = time.perf_counter() - t0
    busy = machine_busy_seconds() - busy_before
    server_cpu = None
    if server_before is not None:
        server_cpu = tree_cpu_seconds(server_pids) - server_before
    rss, cpu = _parse_time_file(time_file)
    other = busy - (cpu or 0.0) - (server_cpu or 0.0)
    text_out = out.decode(errors="replace")
    report = _last_json(text_out)
    if proc.returncode != 0 and not error:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        error = f"exit {proc.returncode}: " + " | ".join(tail)[:400]
    seconds: float | None = wall
    if timed_by_tool:
        seconds = report.get("seconds")
        if seconds is None and not error:
            error = "peer runner printed no timing"
    return Measurement(
        returncode=proc.returncode,
        wall=wall,
        seconds=seconds,
        rss_kib=rss,
        client_cpu=cpu,
        server_cpu=server_cpu,
        other_cpu=max(0.0, other),
        error=error,
        report=report,
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, size: int, sha256: str, source: Path | None = None) -> bool:
    """The file has the object's bytes: compared byte for byte with the uploaded `source`
    when given (exact, and ~4x faster than hashing it here: both files are in the page
    cache), else by its sha256."""
    try:
        if path.stat().st_size != size:
            return False
    except OSError:
        return False
    if source is None:
        return sha256_file(path) == sha256
    with open(path, "rb") as a, open(source, "rb") as b:
        while chunk := a.read(8 * 1024 * 1024):
            if chunk != b.read(len(chunk)):
                return False
    return True


def empty_dir(path: Path) -> None:
    """Remove everything inside `path` (the destination dir) and sync, untimed."""
    if path.exists():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    os.sync()


def listing(path: Path) -> list[tuple[str, int]]:
    """(relative name, apparent size) of every file under `path`."""
    out = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            out.append((str(p.relative_to(path)), p.stat().st_size))
    return out
