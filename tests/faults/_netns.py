"""A private network namespace for network faults: `with netns() as ns: ...`.

A holder process (`unshare --net --fork sleep`) creates the namespace; the calling thread
enters it with setns(2) for the duration of the block, so every server, socket and child
process made inside (nginx, objget, iptables, tc) lives there, and every rule dies with it.
The root namespace's `lo` is never touched. Python 3.11 has no `os.setns`: libc via ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator

from .._servers.util import wait_until

__all__ = ["NetNS", "netns"]

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def sh(*cmd: object) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {done.stderr.strip()}")
    return done.stdout


class NetNS:
    """Helpers for the namespace the current thread is in."""

    def iptables(self, *rule: object) -> None:
        sh("iptables", *rule)

    def flush(self) -> None:
        sh("iptables", "-F")
        with contextlib.suppress(RuntimeError):
            sh("tc", "qdisc", "del", "dev", "lo", "root")

    def tc(self, *args: object) -> None:
        sh("tc", *args)


@contextlib.contextmanager
def netns() -> Iterator[NetNS]:
    """Enter a new network namespace (only `lo`, up) for the duration of the block."""
    holder = subprocess.Popen(
        ["unshare", "--net", "--fork", "--kill-child", "sleep", "3600"],
        stdin=subprocess.DEVNULL,
    )
    mine = os.readlink("/proc/thread-self/ns/net")
    target = f"/proc/{holder.pid}/ns/net"
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        wait_until(lambda: os.readlink(target) != mine, 10, what="the new network namespace")
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            sh("ip", "link", "set", "lo", "up")
            yield NetNS()
        finally:
            _setns(back)
    finally:
        os.close(back)
        holder.kill()
        holder.wait(timeout=30)
