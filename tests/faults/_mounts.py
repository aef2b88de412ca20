"""Filesystems for disk faults: a sized tmpfs, a loop-mounted ext4 image, a read-only bind
mount. Each is a context manager that unmounts (and detaches its loop device) on the way out."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["loop_mount", "make_ext4", "readonly_bind", "tmpfs"]

_T = 60


def _sh(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=_T, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def _umount(path: Path) -> None:
    try:
        _sh("umount", str(path))
    except RuntimeError:
        _sh("umount", "-l", str(path))  # busy (a killed child's fd): detach it lazily


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "16m") mounted at `path`."""
    path.mkdir(parents=True, exist_ok=True)
    _sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "objget-faults", str(path))
    try:
        yield path
    finally:
        _umount(path)


def resize_tmpfs(path: Path, size: str) -> None:
    _sh("mount", "-o", f"remount,size={size}", str(path))


def make_ext4(image: Path, size: int) -> Path:
    """A sparse file of `size` bytes holding a fresh ext4 filesystem."""
    with open(image, "wb") as f:
        f.truncate(size)
    _sh("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))
    return image


@contextlib.contextmanager
def loop_mount(image: Path, path: Path, options: str = "") -> Iterator[Path]:
    """`image` attached to a free loop device and mounted at `path` (a journal is replayed
    here, as after a reboot)."""
    path.mkdir(parents=True, exist_ok=True)
    device = _sh("losetup", "--find", "--show", str(image))
    try:
        cmd = ["mount", "-t", "ext4"] + (["-o", options] if options else [])
        _sh(*cmd, device, str(path))
        try:
            yield path
        finally:
            _umount(path)
    finally:
        _sh("losetup", "-d", device)


@contextlib.contextmanager
def readonly_bind(source: Path, path: Path) -> Iterator[Path]:
    """`source` bind-mounted read-only at `path` (root ignores file modes, not this)."""
    path.mkdir(parents=True, exist_ok=True)
    _sh("mount", "--bind", str(source), str(path))
    try:
        _sh("mount", "-o", "remount,bind,ro", str(path))
        yield path
    finally:
        _umount(path)
