"""Probes for every capability the faults tier needs. A missing one fails the run loudly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

__all__ = ["probe_all"]

TOOLS = (
    "tc",
    "ip",
    "iptables",
    "losetup",
    "mkfs.ext4",
    "mount",
    "umount",
    "unshare",
    "strace",
    "fiu-run",
    "nginx",
    "cp",
)
_T = 30


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=_T, check=False)


def _need(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{what}: exit {done.returncode}: {done.stderr.strip()[-300:]}")


def _netns() -> None:
    script = (
        "set -e; ip link set lo up; "
        "tc qdisc add dev lo root tbf rate 16mbit burst 256kb latency 400ms; "
        "iptables -A INPUT -p tcp --dport 9 -m connbytes --connbytes 1048576: "
        "--connbytes-dir reply --connbytes-mode bytes -j REJECT --reject-with tcp-reset; "
        "iptables -A INPUT -p tcp --dport 9 -m statistic --mode random --probability 0.05 -j DROP"
    )
    _need(_run("unshare", "--net", "--fork", "sh", "-c", script), "netns + tc tbf + iptables")


def _strace() -> None:
    code = "import os\ntry:\n os.fsync(1)\nexcept OSError as e:\n raise SystemExit(e.errno)"
    done = _run(
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "inject=fsync:error=EIO",
        sys.executable,
        "-c",
        code,
    )
    if done.returncode != 5:
        raise RuntimeError(f"strace inject=fsync:error=EIO did not inject (exit {done.returncode})")


def _fiu() -> None:
    code = (
        "import os, tempfile\nfd, p = tempfile.mkstemp()\nos.unlink(p)\n"
        "try:\n os.pwrite(fd, b'x', 0)\nexcept OSError as e:\n raise SystemExit(e.errno)"
    )
    done = _run(
        "fiu-run",
        "-x",
        "-c",
        "enable name=posix/io/rw/pwrite,failinfo=5",
        sys.executable,
        "-c",
        code,
    )
    if done.returncode != 5:
        raise RuntimeError(f"fiu-run did not fail pwrite with EIO (exit {done.returncode})")


def _mounts() -> None:
    with tempfile.TemporaryDirectory(prefix="objget-caps-") as d:
        _need(_run("mount", "-t", "tmpfs", "-o", "size=1m", "objget-caps", d), "mount tmpfs")
        _need(_run("umount", d), "umount tmpfs")
        img = os.path.join(d, "img")
        with open(img, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        _need(_run("mkfs.ext4", "-q", "-F", img), "mkfs.ext4")
        done = _run("losetup", "--find", "--show", img)
        _need(done, "losetup")
        _need(_run("losetup", "-d", done.stdout.strip()), "losetup -d")


def probe_all() -> list[str]:
    """Every missing capability, as one line each (empty when all are there)."""
    problems: list[str] = []
    if os.geteuid() != 0:
        return ["the faults tier runs as root (netns, mounts, loop devices, iptables)"]
    for tool in TOOLS:
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            problems.append(f"`{tool}` not found (see scripts/test.sh for the Debian packages)")
    if problems:
        return problems
    checks: dict[str, Callable[[], None]] = {
        "network namespace, tc, iptables": _netns,
        "strace -e inject": _strace,
        "fiu-run": _fiu,
        "tmpfs, loop devices, ext4": _mounts,
    }
    for name, check in checks.items():
        try:
            check()
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{name}: {exc}")
    return problems
