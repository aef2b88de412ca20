"""Ctrl-C: the CLI as a subprocess gets SIGINT (to its process group, as a terminal sends it)
in the middle of a download from nginx, while its workers wait in socket reads of a trickling
answer. It must exit 130 within a few seconds with a one-line message and no traceback, leave
a checkpoint whose spans are exactly the source's bytes, and the next run must fetch only the
missing bytes and end byte-identical.

The trickle (`limit_rate_after 1m; limit_rate 4k;`: each answer's first MiB fast, then 4 KB/s)
makes the exit time depend on the abort: a worker stuck in a 256 KiB read at 4 KB/s only ends
at once if the stop shuts its socket down (urllib3's `HTTPResponse.shutdown()`).
"""

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

from objget.engine._checkpoint import load

from .._servers.nginx import Nginx
from .._servers.util import live_done, sha256_file, write_random

pytestmark = [pytest.mark.interrupt, pytest.mark.timeout(120)]

MiB = 1024 * 1024
SIZE = 24 * MiB
TRICKLE = "limit_rate_after 1m; limit_rate 4k;"
EXIT_WITHIN = 5.0  # seconds from SIGINT to the exit


def objget(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "objget", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: SIGINT goes to it alone
    )


_LOG_LINE = re.compile(r'"GET (\S+) [^"]*" (\d{3}) (\d+) ')


def bytes_sent(log: Path, path: str) -> int:
    """Body bytes nginx logged as sent for `path`."""
    if not log.exists():
        return 0
    found = (_LOG_LINE.search(line) for line in log.read_text().splitlines())
    return sum(int(m.group(3)) for m in found if m is not None and m.group(1) == path)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "big.bin", SIZE, seed=14)
    work = tmp_path / "nginx"
    with Nginx(root, work, extra=f"{TRICKLE} access_log {work / 'first.log'};") as server:
        yield server, root / "big.bin", work


def test_ctrl_c_exits_130_keeps_an_exact_checkpoint_and_the_rerun_fetches_the_rest(site, tmp_path):
    server, source, work = site
    url = f"{server.url}/big.bin"
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    first = objget(url, str(dest), "-j", "4", "--part-size", "2M")
    try:
        deadline = time.monotonic() + 60
        while live_done(dest) < MiB:  # the fast first MiB of an answer is written
            assert first.poll() is None, f"objget ended early: {first.communicate()}"
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.02)
        time.sleep(0.5)  # the streams are now in reads of the trickle
        sigint_at = time.monotonic()
        os.killpg(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=60)
        took = time.monotonic() - sigint_at
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate(timeout=10)
    assert first.returncode == 130, err
    assert took < EXIT_WITHIN, f"exited {took:.1f} s after SIGINT"
    assert "Traceback" not in err and "Exception" not in err, err
    assert "interrupted; progress is saved" in err

    # the checkpoint says which bytes are written, and exactly those are the source's
    ckpt = load(f"{dest}.objget-ckpt")
    assert ckpt is not None
    done = sum(s.stop - s.start for s in ckpt.spans)
    assert MiB <= done < SIZE
    want = source.read_bytes()
    with open(f"{dest}.objget-part", "rb") as part:
        for span in ckpt.spans:
            part.seek(span.start)
            got = part.read(span.stop - span.start)
            assert got == want[span.start : span.stop], f"wrong bytes in {span}"
    assert not Path(f"{dest}.objget-lock").exists() or _unlocked(dest)

    # the next run (no trickle now) fetches only the missing bytes
    server.reload(extra=f"access_log {work / 'second.log'};")
    second = objget(url, str(dest), "--json")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    result = json.loads(out)
    assert result["bytes_resumed"] == done
    assert result["bytes_fetched"] == SIZE - done
    sent, deadline = 0, time.monotonic() + 10
    while time.monotonic() < deadline:  # nginx logs a request as it finishes it
        sent = bytes_sent(work / "second.log", "/big.bin")
        if sent >= SIZE - done:
            break
        time.sleep(0.05)
    assert sent == SIZE - done
    assert sha256_file(dest) == sha256_file(source)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]


def _unlocked(dest: Path) -> bool:
    """The lock file may stay behind; what matters is that nobody holds it."""
    import fcntl

    with open(f"{dest}.objget-lock", "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return True
