"""Small helpers shared by the server fixtures and the tests: ports, random files, hashes, waits."""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

from objget.engine._checkpoint import CheckpointInvalid, load
from objget.engine._live import load_live

__all__ = ["free_port", "free_ports", "sha256_file", "tail", "wait_until", "write_random"]

_CHUNK = 8 * 1024 * 1024


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    All sockets stay bound until every port is picked, so the kernel cannot hand out the
    same port twice within one call.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """Write `size` reproducible pseudo-random bytes to `path` (about 1 GB/s) and return it."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, _CHUNK)
            f.write(rng.randbytes(n))
            left -= n
    return Path(path)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def wait_until(
    predicate: Callable[[], object], timeout: float, *, interval: float = 0.05, what: str = ""
) -> None:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not true after {timeout:g} s: {what or predicate!r}")
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a (log) file, or a note that it does not exist."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def live_done(dest: Path | str) -> int:
    """Bytes the run's durable checkpoint and live record (written every tick, no fsync, the
    segments written since the durable snapshot) together say are written."""
    try:
        live = load_live(f"{dest}.objget-ckpt-live")
        durable = load(f"{dest}.objget-ckpt")
    except (CheckpointInvalid, OSError):
        return 0
    if live is None or durable is None or durable.run != live.tag.run:
        return 0
    done = end = 0
    for start, stop in sorted((s.start, s.stop) for s in durable.spans + live.segments):
        done += max(0, stop - max(start, end))
        end = max(end, stop)
    return done
