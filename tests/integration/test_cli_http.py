"""The CLI as a subprocess against nginx: kill-and-resume, the lock, exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from objget.engine._checkpoint import CheckpointInvalid, load

from .._servers.nginx import Nginx
from .._servers.util import live_done, sha256_file, write_random

MiB = 1024 * 1024
SIZE = 256 * MiB


def objget(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "objget", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def done_bytes(ckpt_path: Path) -> int:
    try:
        ckpt = load(str(ckpt_path))
    except (CheckpointInvalid, OSError):
        return 0
    return 0 if ckpt is None else sum(s.stop - s.start for s in ckpt.spans)


def kill_when(proc: subprocess.Popen, ckpt: Path, fraction: float, timeout: float = 60) -> int:
    """SIGKILL once the run has written `fraction` (by its live record, else its checkpoint)."""
    deadline = time.monotonic() + timeout
    dest = Path(str(ckpt).removesuffix(".objget-ckpt"))
    while time.monotonic() < deadline:
        done = max(done_bytes(ckpt), live_done(dest))
        if done >= fraction * SIZE:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
            return done
        if proc.poll() is not None:
            pytest.fail(f"objget ended before it was killed: {proc.communicate()}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    pytest.fail("the download never reached the kill point")


_LOG_BYTES = re.compile(r'" (\d{3}) (\d+) ')


def served(log: Path, skip: int = 0) -> tuple[int, int]:
    """(bytes sent, lines) in nginx's access log after the first `skip` lines."""
    if not log.exists():
        return 0, 0
    lines = log.read_text().splitlines()
    total = 0
    for line in lines[skip:]:
        m = _LOG_BYTES.search(line)
        if m:
            total += int(m.group(2))
    return total, len(lines)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    write_random(root / "big.bin", SIZE, seed=11)
    (root / "small.bin").write_bytes(b"hello objget\n")
    work = tmp_path_factory.mktemp("nginx")
    log = work / "access.log"
    with Nginx(root, work, extra=f"access_log {log};") as server:
        yield server, root, log


def wait_for_log_quiet(log: Path) -> None:
    last = -1
    for _ in range(50):
        n = served(log)[1]
        if n == last:
            return
        last = n
        time.sleep(0.1)


@pytest.mark.interrupt
def test_kill_at_40_percent_then_resume_with_other_settings(site, tmp_path):
    server, root, log = site
    url = f"{server.url}/big.bin"
    dest = tmp_path / "big.bin"
    ckpt = Path(f"{dest}.objget-ckpt")
    expected = sha256_file(root / "big.bin")

    first = objget(url, str(dest), "--limit-rate", "48M", "-q")
    done_at_kill = kill_when(first, ckpt, 0.40)
    assert not dest.exists()
    assert Path(f"{dest}.objget-part").exists()
    wait_for_log_quiet(log)
    _, skip = served(log)

    # re-run with other -j and part size: it resumes, then gets killed again at ~70%
    second = objget(url, str(dest), "-j", "3", "--part-size", "5M", "--limit-rate", "48M", "-q")
    kill_when(second, ckpt, 0.70)
    wait_for_log_quiet(log)
    sent_second, skip2 = served(log, skip)
    assert sent_second <= 0.40 * SIZE, "the second run re-fetched bytes the first had saved"

    third = objget(url, str(dest), "--json")
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    result = json.loads(out)
    wait_for_log_quiet(log)
    sent_third, _ = served(log, skip2)
    assert sha256_file(dest) == expected
    assert result["bytes_resumed"] >= 0.68 * SIZE
    assert sent_third <= 0.32 * SIZE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]
    assert done_at_kill >= 0.40 * SIZE


@pytest.mark.interrupt
def test_refetched_after_a_kill_is_at_most_62_percent(site, tmp_path):
    server, root, log = site
    url = f"{server.url}/big.bin"
    dest = tmp_path / "big.bin"
    first = objget(url, str(dest), "--limit-rate", "64M", "-q")
    kill_when(first, Path(f"{dest}.objget-ckpt"), 0.40)
    wait_for_log_quiet(log)
    _, skip = served(log)
    rerun = objget(url, str(dest), "-q")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    wait_for_log_quiet(log)
    refetched, _ = served(log, skip)
    assert refetched <= 0.62 * SIZE, f"re-fetched {refetched / SIZE:.1%}"
    assert sha256_file(dest) == sha256_file(root / "big.bin")


@pytest.mark.interrupt
def test_a_sigkill_loses_nothing_the_live_record_had(site, tmp_path):
    """The durable checkpoint lags by up to a second; after a SIGKILL the page cache still
    holds every written byte, and the live record says which: the re-run resumes from it."""
    server, root, _ = site
    dest = tmp_path / "big.bin"
    first = objget(f"{server.url}/big.bin", str(dest), "--limit-rate", "64M", "-q")
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc_alive(first):
        done = live_done(dest)
        if done >= 0.40 * SIZE:
            break
        time.sleep(0.005)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    assert done >= 0.40 * SIZE, "the live record never reached 40%"
    assert done_bytes(Path(f"{dest}.objget-ckpt")) <= done
    rerun = objget(f"{server.url}/big.bin", str(dest), "--json")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out)["bytes_resumed"] >= done
    assert sha256_file(dest) == sha256_file(root / "big.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


def proc_alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def test_second_run_on_the_same_destination_is_refused(site, tmp_path):
    server, _, _ = site
    dest = tmp_path / "big.bin"
    first = objget(f"{server.url}/big.bin", str(dest), "--limit-rate", "8M", "-q")
    try:
        lock = Path(f"{dest}.objget-lock")
        for _ in range(200):
            if lock.exists():
                break
            time.sleep(0.05)
        second = objget(f"{server.url}/big.bin", str(dest), "-q")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 7
        assert "objget-lock" in err and "another objget run" in err
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)


def test_exit_codes_and_messages(site, tmp_path):
    server, _, _ = site
    missing = objget(f"{server.url}/nope.bin", str(tmp_path / "x"))
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 3
    assert "not found" in err and "Traceback" not in err
    usage = objget(f"{server.url}/small.bin", "--part-size", "lots")
    _, err = usage.communicate(timeout=60)
    assert usage.returncode == 2
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = objget(f"http://127.0.0.1:{port}/x", str(tmp_path / "y"), "--retries", "2")
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 5, err
    assert "cannot connect" in err and "gave up after 2 attempts" in err
    ok = objget(f"{server.url}/small.bin", str(tmp_path))
    _, err = ok.communicate(timeout=60)
    assert ok.returncode == 0, err
    assert (tmp_path / "small.bin").read_bytes() == b"hello objget\n"
    assert "Downloaded" in err
