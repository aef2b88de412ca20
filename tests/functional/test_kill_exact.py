"""A SIGKILL at a known byte count: the resume fetches only what the killed run had not written.

A child process downloads from the in-memory backend; once the live record is on disk, the
backend serves exactly `kill_at` bytes and then, at the next read of any stream, the child
SIGKILLs itself: every thread stops at once, and the page cache keeps what was written, as
with a real kill. The resume in this process must then fetch at most what the killed run had
not written: with one stream that is exactly `size - kill_at` (every byte read was written
before the next read), with several at most one read buffer more per stream (bytes read but
not yet written when the kill came). The live record must follow every write, not a timer: a
record rewritten every 20 ms missed what was written since its last rewrite.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import objget
from objget.engine._live import SEGMENT
from objget.testing import MemoryBackend, no_wait_retry

MiB = 1024 * 1024
SIZE = 48 * MiB
BUFFER = 256 * 1024

CHILD = textwrap.dedent(
    """
    import os, random, signal, sys, threading, time
    import objget
    from objget.testing import MemoryBackend, no_wait_retry

    dest, size, kill_at, workers, buffer = sys.argv[1], *map(int, sys.argv[2:6])
    data = random.Random(7).randbytes(size)
    live = dest + ".objget-ckpt-live"
    lock = threading.Lock()
    served = [0]

    class Body:
        def __init__(self, body):
            self._body = body
            self.status, self.content_range = body.status, body.content_range
            self.content_length = body.content_length

        def readinto(self, buf):
            deadline = time.monotonic() + 30
            while not os.path.exists(live):  # the run's live record is open
                if time.monotonic() > deadline:
                    sys.exit("no live record")
                time.sleep(0.001)
            with lock:
                if served[0] >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                    time.sleep(60)
                n = self._body.readinto(buf[: min(len(buf), kill_at - served[0])])
                served[0] += n
                return n

        def abort(self):
            pass

        def close(self):
            self._body.close()

    class Backend(MemoryBackend):
        def get_range(self, key, rng, *, meta):
            return Body(super().get_range(key, rng, meta=meta))

    config = objget.DownloadConfig(
        retry=no_wait_retry(), min_workers=workers, max_workers=workers,
        buffer_size=buffer, checkpoint_interval=0.05,
    )
    with objget.Downloader(config=config) as dl:
        dl.download_object(Backend({"k": data}), "k", dest)
    sys.exit("not killed")
    """
)


def killed(dest: Path, kill_at: int, workers: int) -> None:
    src = Path(objget.__file__).resolve().parent.parent
    path = [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    args = [str(dest), str(SIZE), str(kill_at), str(workers), str(BUFFER)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def resume(dest: Path) -> objget.DownloadResult:
    data = random.Random(7).randbytes(SIZE)
    cfg = objget.DownloadConfig(retry=no_wait_retry(), max_workers=4)
    with objget.Downloader(config=cfg) as dl:
        res = dl.download_object(MemoryBackend({"k": data}), "k", dest)
    assert dest.read_bytes() == data
    return res


@pytest.mark.parametrize(
    "kill_at",
    [
        5 * MiB + 12_345,  # mid-segment, mid-buffer
        2 * SEGMENT,  # right where a segment ends
        7 * SEGMENT + BUFFER,  # one read into a segment
    ],
)
def test_one_stream_resumes_exactly_where_it_was_killed(tmp_path, kill_at):
    dest = tmp_path / "out"
    killed(dest, kill_at, workers=1)
    res = resume(dest)
    assert res.bytes_resumed == kill_at
    assert res.bytes_fetched == SIZE - kill_at


def test_several_streams_lose_at_most_one_read_each(tmp_path):
    dest = tmp_path / "out"
    kill_at, workers = 21 * MiB + 4321, 4
    killed(dest, kill_at, workers=workers)
    res = resume(dest)
    assert res.bytes_resumed + res.bytes_fetched == SIZE
    assert res.bytes_fetched <= SIZE - kill_at + workers * BUFFER
