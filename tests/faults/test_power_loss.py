"""Power-loss approximation: downloads onto a loop-mounted ext4 (`noauto_da_alloc,commit=60`,
so nothing reaches the "disk" that was not fsync'ed), snapshots taken with the writer stopped
(`SIGSTOP`, `cp --sparse=always` of the image without a sync, `SIGCONT`), each snapshot mounted
on a second loop device (journal replay = reboot) and resumed from.

On every snapshot: the destination is absent or byte-identical, the checkpoint claims only
bytes that are in the temp file; the resumed download is byte-identical.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import objget

from ._harness import MiB, ckpt_done, ckpt_lies, dest_wrong_bytes, same, start, wait_for
from ._mounts import loop_mount, make_ext4

SIZE = 32 * MiB
IMAGE = 128 * MiB
RATE = 12 * MiB
ROW = "power loss (ext4 snapshot, journal replay)"
OPTIONS = "noauto_da_alloc,commit=60"


def all_stopped(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = [
            Path(f"/proc/{pid}/task/{t}/stat").read_text().rpartition(")")[2].split()[0]
            for t in tasks
        ]
    except (OSError, IndexError):
        return True  # gone
    return all(s in ("T", "t", "Z", "X") for s in states)


def snapshot(pid: int, image: Path, copy: Path) -> None:
    """Stop the writer, copy its filesystem's image as the disk holds it now, resume it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        if not wait_for(lambda: all_stopped(pid), 30):
            raise AssertionError("the writer did not stop")
        subprocess.run(["cp", "--sparse=always", str(image), str(copy)], check=True, timeout=120)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_snapshots_of_a_running_download_resume_correctly(
    web, make_object, tmp_path, summary, trials
):
    source = make_object("power.bin", SIZE)
    url = f"{web.url}/power.bin"
    rng = random.Random(77)
    runs, per_run = trials(5, 20), 4
    failures = []
    claimed = []
    for r in range(runs):
        image = make_ext4(tmp_path / f"disk-{r}.img", IMAGE)
        copies = [tmp_path / f"snap-{r}-{k}.img" for k in range(per_run)]
        args = [url, "-q", "-j", rng.choice((1, 2, 4, 8)), "--limit-rate", RATE]
        args += ["--part-size", rng.choice(("1M", "4M", "8M"))]
        with loop_mount(image, tmp_path / "live", OPTIONS) as live:
            dest = live / "power.bin"
            writer = start([args[0], dest, *args[1:]], tmp_path / f"writer-{r}.log")
            try:
                wait_for(Path(f"{dest}.objget-lock").exists, 60, proc=writer)
                # one snapshot in the first second (start-up, first checkpoint), the others at
                # random moments after the first checkpoint with bytes in it
                time.sleep(rng.uniform(0.0, 1.0))
                snapshot(writer.pid, image, copies[0])
                wait_for(lambda: ckpt_done(dest) > 0, 60, proc=writer)  # noqa: B023
                left = (SIZE - ckpt_done(dest)) / RATE
                moments = sorted(rng.uniform(0.0, left) for _ in copies[1:])
                t0 = time.monotonic()
                for when, copy in zip(moments, copies[1:], strict=True):
                    time.sleep(max(0.0, t0 + when - time.monotonic()))
                    snapshot(writer.pid, image, copy)
                status = writer.wait(timeout=120)
            finally:
                if writer.poll() is None:
                    os.kill(writer.pid, signal.SIGKILL)
                    writer.wait(timeout=30)
            assert status == 0, (tmp_path / f"writer-{r}.log").read_text()
            assert same(dest, source)
        image.unlink()
        for copy in copies:
            with loop_mount(copy, tmp_path / "snap") as snap:
                dest = snap / "power.bin"
                wrong = dest_wrong_bytes(dest, source)
                lies = ckpt_lies(dest, source)
                claimed.append(ckpt_done(dest))
                try:  # resume on the "rebooted" filesystem (in-process: the CLI is the same)
                    objget.download(url, str(dest))
                    error = None
                except (objget.DownloadError, OSError) as exc:
                    error = exc
                ok = error is None and same(dest, source)
                summary.trial(ROW, correct=ok, wrong_bytes=wrong, ckpt_lies=lies)
                if wrong or lies or not ok:
                    failures.append((copy.name, wrong, lies, error))
            copy.unlink()
    kept = sum(1 for c in claimed if c > 0)
    summary.note(
        ROW,
        f"{len(claimed)} snapshots; {kept} held a checkpoint with bytes to resume "
        f"(mean {sum(claimed) / max(1, len(claimed)) / MiB:.1f} MiB of {SIZE // MiB} MiB)",
    )
    assert not failures, failures
    assert kept >= len(claimed) // 2, f"too few snapshots caught saved progress: {claimed}"
