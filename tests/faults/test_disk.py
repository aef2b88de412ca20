"""Disk faults: a full disk (tmpfs) before and during a download, EIO on pwrite and on
fsync/fdatasync (strace, libfiu), a read-only destination directory, and a file size limit
(RLIMIT_FSIZE: EFBIG and the short write before it).

Each ends in exit 6 with one clear message, the destination untouched, a checkpoint that claims
only bytes on disk; and the same command, once the fault is gone, finishes the download.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ._harness import (
    MiB,
    ckpt_done,
    ckpt_lies,
    dest_wrong_bytes,
    kill,
    run,
    same,
    start,
    typed_error,
    wait_for,
)
from ._mounts import readonly_bind, resize_tmpfs, tmpfs

SIZE = 24 * MiB


def fill(directory: Path) -> Path:
    """Fill the filesystem at `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    block = b"\xff" * MiB
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\xff" * 4096)
        except OSError:
            pass
    return filler


def resume_json(url: str, dest: Path) -> tuple[bool, dict]:
    done = run([url, dest, "-q", "--json"])
    return done.rc == 0, json.loads(done.out) if done.rc == 0 else {"err": done.err}


def test_disk_full_before_the_start_names_the_space_needed(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    url = f"{web.url}/disk-24.bin"
    with tmpfs(tmp_path / "small", "16m") as small:
        dest = small / "disk-24.bin"
        done = run([url, dest, "-q"])
        typed = typed_error(done, 6, "not enough free space", "24.0 MiB") and not dest.exists()
        resize_tmpfs(small, "64m")
        ok, result = resume_json(url, dest)
        ok = ok and same(dest, source)
        summary.trial(
            "disk: ENOSPC before the start (tmpfs), then resized",
            typed=typed and ok,
            wrong_bytes=dest_wrong_bytes(dest, source),
        )
        assert typed, done.err
        assert ok, result


@pytest.mark.interrupt
def test_disk_full_mid_download_then_freed(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    url = f"{web.url}/disk-24.bin"
    with tmpfs(tmp_path / "fs", "40m") as fs:
        dest = fs / "disk-24.bin"
        proc = start([url, dest, "-q", "--limit-rate", "8M"], tmp_path / "full.log")
        try:
            assert wait_for(lambda: ckpt_done(dest) >= SIZE // 4, 60, proc=proc)
            filler = fill(fs)
            status = proc.wait(timeout=60)
        finally:
            kill(proc)
        log = (tmp_path / "full.log").read_text()
        lies = ckpt_lies(dest, source)
        saved = ckpt_done(dest)
        typed = status == 6 and "free at least" in log and not dest.exists()
        filler.unlink()
        ok, result = resume_json(url, dest)
        ok = ok and same(dest, source) and result["bytes_resumed"] >= SIZE // 4
        summary.trial(
            "disk: ENOSPC mid-download (tmpfs filled), then freed",
            typed=typed and ok,
            ckpt_lies=lies,
            wrong_bytes=dest_wrong_bytes(dest, source),
        )
        assert typed and lies == 0 and saved >= SIZE // 4, (status, log)
        assert ok, result


def strace(inject: str, log: str = "/dev/null") -> list[str]:
    return [
        "strace",
        "-f",
        "-qq",
        "-o",
        log,
        "-e",
        "trace=fdatasync,fsync,rename,pwrite64",
        "-e",
        f"inject={inject}",
    ]


INJECTED = [
    ("disk: ENOSPC on pwrite64 (strace)", "pwrite64:error=ENOSPC:when=12", "the disk is full"),
    ("disk: EIO on pwrite64 (strace)", "pwrite64:error=EIO:when=12", "Input/output error"),
    ("disk: EIO on fsync (strace)", "fsync:error=EIO:when=1+", "Input/output error"),
    ("disk: EIO on fdatasync (strace)", "fdatasync:error=EIO:when=2", "Input/output error"),
]


@pytest.mark.interrupt
def test_injected_write_and_sync_errors(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    url = f"{web.url}/disk-24.bin"
    failures = []
    for i, (row, inject, words) in enumerate(INJECTED):
        dest = tmp_path / f"inj-{i}" / "out.bin"
        dest.parent.mkdir()
        trace = tmp_path / f"inj-{i}.strace"
        done = run(
            # 8M: ~3 s, two periodic saves before the end (a fresh download's first save is
            # its first periodic one), so the second fdatasync fails after a checkpoint exists
            [url, dest, "-q", "-j", "2", "--limit-rate", "8M"],
            prefix=strace(inject, str(trace)),
        )
        lies = ckpt_lies(dest, source)
        typed = typed_error(done, 6, words) and not dest.exists()
        after = checkpoints_after_failed_sync(trace.read_text())
        ok, result = resume_json(url, dest)
        ok = ok and same(dest, source)
        summary.trial(
            row,
            typed=typed and ok and not after,
            ckpt_lies=lies,
            wrong_bytes=dest_wrong_bytes(dest, source),
        )
        if not (typed and lies == 0 and not after and ok):
            failures.append((inject, done.rc, done.err, lies, after, result))
    assert not failures, failures


def checkpoints_after_failed_sync(trace: str) -> list[str]:
    """Checkpoint renames that happen after an fsync/fdatasync failed: after a failed sync
    the kernel may have dropped the dirty pages, so no later checkpoint may claim them."""
    failed = False
    after = []
    for line in trace.splitlines():
        if re.search(r"\b(fsync|fdatasync)\(.*= -1 E", line):
            failed = True
        elif failed and "rename(" in line and ".objget-ckpt" in line:
            after.append(line.strip())
    return after


def test_eio_on_every_pwrite_with_libfiu(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    url = f"{web.url}/disk-24.bin"
    dest = tmp_path / "fiu.bin"
    fiu = ["fiu-run", "-x", "-c", "enable name=posix/io/rw/pwrite,failinfo=5"]
    done = run([url, dest, "-q"], prefix=fiu)
    lies = ckpt_lies(dest, source)
    typed = typed_error(done, 6, "Input/output error") and not dest.exists()
    ok, result = resume_json(url, dest)
    ok = ok and same(dest, source)
    summary.trial(
        "disk: EIO on every pwrite (libfiu)",
        typed=typed and ok,
        ckpt_lies=lies,
        wrong_bytes=dest_wrong_bytes(dest, source),
    )
    assert typed and lies == 0, done.err
    assert ok, result


def test_read_only_destination_directory(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    real = tmp_path / "real"
    real.mkdir()
    (real / "disk-24.bin").write_bytes(b"old")
    with readonly_bind(real, tmp_path / "ro") as ro:
        done = run([f"{web.url}/disk-24.bin", ro / "disk-24.bin", "-q"])
    typed = typed_error(done, 6, "Read-only file system")
    untouched = sorted(p.name for p in real.iterdir()) == ["disk-24.bin"]
    typed = typed and untouched and (real / "disk-24.bin").read_bytes() == b"old"
    wrong = dest_wrong_bytes(real / "disk-24.bin", source, before=b"old")
    summary.trial("disk: read-only destination directory", typed=typed, wrong_bytes=wrong)
    assert typed, done.err


def test_file_size_limit_efbig_and_the_short_write(web, make_object, tmp_path, summary):
    source = make_object("disk-24.bin", SIZE)
    url = f"{web.url}/disk-24.bin"
    dest = tmp_path / "efbig.bin"
    limit = SIZE // 2 + 12345  # not on a write boundary: one write is cut short first
    prlimit = ["prlimit", f"--fsize={limit}:{limit}"]
    fresh = run([url, dest, "-q"], prefix=prlimit)  # preallocating the whole size fails
    typed_fresh = typed_error(fresh, 6, "File too large") and not dest.exists()
    summary.trial("disk: EFBIG (RLIMIT_FSIZE) on a fresh download", typed=typed_fresh)
    assert typed_fresh, fresh.err
    # a resumed run writes into the existing temp file: the write across the limit is short
    proc = start([url, dest, "-q", "-j", "1", "--limit-rate", "8M"], tmp_path / "first.log")
    try:
        assert wait_for(lambda: ckpt_done(dest) >= SIZE // 5, 60, proc=proc)
    finally:
        kill(proc)
    trace = tmp_path / "efbig.strace"
    traced = [*prlimit, "strace", "-f", "-qq", "-o", str(trace), "-e", "trace=pwrite64"]
    limited = run([url, dest, "-q", "-j", "1"], prefix=traced)
    short = [ln for ln in trace.read_text().splitlines() if _short_write(ln)]
    lies = ckpt_lies(dest, source)
    typed = typed_error(limited, 6, "File too large") and not dest.exists()
    claimed = ckpt_done(dest)
    ok, result = resume_json(url, dest)
    ok = ok and same(dest, source)
    summary.trial(
        "disk: EFBIG after a short write (RLIMIT_FSIZE, resumed)",
        typed=typed and ok,
        ckpt_lies=lies,
        wrong_bytes=dest_wrong_bytes(dest, source),
    )
    assert short, "no short pwrite64 before EFBIG"
    assert typed and lies == 0 and claimed <= limit, (limited.err, claimed)
    assert ok, result


def _short_write(line: str) -> bool:
    m = re.search(r"pwrite64\(\d+, .*, (\d+), (\d+)\)\s+= (\d+)$", line)
    return m is not None and 0 < int(m.group(3)) < int(m.group(1))
