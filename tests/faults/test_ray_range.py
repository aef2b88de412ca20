"""The Ray range path under crashes and power loss: the driver and its range tasks run in one
process on an in-process stand-in for Ray (`_ray_inline`; each range task is `run_range`, as on
a worker), downloading one object of several ranges into the shared temp file.

- Crash points: SIGKILL exactly at every rename / fsync / fdatasync of one run, and at sampled
  pwrite64 calls (`strace -f -e inject=SYSCALL:signal=KILL:when=N`); then the same download
  again (a new driver, every range task resuming from its checkpoint).
- Power loss: the download runs on a loop-mounted ext4 (`noauto_da_alloc,commit=60`: nothing
  reaches the "disk" that was not synced); snapshots of the image are taken with the writer
  stopped, mounted on a second loop device (journal replay = reboot) and resumed from.

After every kill and on every snapshot: the destination is absent or byte-identical, and every
span every range checkpoint (`DEST.objget-r<start>.ckpt`) claims is in the temp file as in the
source; the resumed download is byte-identical.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from objget.engine import _checkpoint as ck
from objget.engine._windows import range_paths

from ._harness import ENV, MiB, ckpt_lies, count_calls, dest_wrong_bytes, same, sample, wait_for
from ._mounts import loop_mount, make_ext4
from ._ray_inline import download_one
from .test_power_loss import snapshot

REPO = Path(__file__).resolve().parents[2]
SYSCALLS = ("rename", "fsync", "fdatasync", "pwrite64")
CRASH_SIZE, CRASH_RANGE, CRASH_RATE = 8 * MiB, 2 * MiB, 2 * MiB
POWER_SIZE, POWER_RANGE, POWER_RATE = 32 * MiB, 4 * MiB, 2 * MiB
IMAGE = 128 * MiB
POWER_ROW = "Ray ranges: power loss (ext4 snapshot, journal replay)"
OPTIONS = "noauto_da_alloc,commit=60"


def child(url: str, root: Path, range_size: int, rate: int) -> list[str]:
    """The command line of one run of the Ray driver with its range tasks in one process."""
    return [sys.executable, "-m", "tests.faults._ray_inline", url, str(root), str(range_size),
            str(rate)]  # fmt: skip


def range_checkpoints(dest: Path, size: int, range_size: int) -> list[Path]:
    return [Path(range_paths(str(dest), a).checkpoint) for a in range(0, size, range_size)]


def range_lies(dest: Path, source: Path, size: int, range_size: int) -> int:
    """Bytes any range checkpoint claims that are not in the temp file as in the source."""
    return sum(ckpt_lies(dest, source, c) for c in range_checkpoints(dest, size, range_size))


def range_claimed(dest: Path, size: int, range_size: int) -> int:
    total = 0
    for c in range_checkpoints(dest, size, range_size):
        try:
            saved = ck.load(str(c))
        except (ck.CheckpointInvalid, OSError):
            continue
        total += 0 if saved is None else sum(s.stop - s.start for s in saved.spans)
    return total


def resume(url: str, root: Path, range_size: int) -> object:
    """The same download again in this process: "ok", or what went wrong."""
    try:
        results = download_one(url, str(root), range_size=range_size)
    except Exception as exc:
        return exc
    bad = [r for r in results if r.status not in ("downloaded", "skipped")]
    return "ok" if results and not bad else bad or "no result"


def test_ray_range_sigkill_at_every_durability_call_then_resume(
    web, make_object, tmp_path, summary, trials
):
    source = make_object("ray-crash.bin", CRASH_SIZE)
    url = f"{web.url}/ray-crash.bin"
    trace = tmp_path / "discover.strace"
    strace = ["strace", "-f", "-qq"]
    first = subprocess.run(
        [*strace, "-o", str(trace), "-e", "trace=" + ",".join(SYSCALLS),
         *child(url, tmp_path / "probe", CRASH_RANGE, CRASH_RATE)],
        capture_output=True, text=True, timeout=180, env=ENV, cwd=REPO, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert same(tmp_path / "probe" / "ray-crash.bin", source)
    calls = count_calls(trace, SYSCALLS)
    assert calls.get("fdatasync", 0) >= 3 and calls.get("rename", 0) >= 2, calls
    points = [
        (name, n) for name in ("rename", "fsync", "fdatasync") for n in range(1, calls[name] + 1)
    ]
    points += [("pwrite64", n) for n in sample(calls["pwrite64"], trials(6, 24))]
    failures = []
    for i, (name, n) in enumerate(points):
        root = tmp_path / f"t{i}"
        dest = root / "ray-crash.bin"
        inject = [*strace, "-o", "/dev/null", "-e", f"inject={name}:signal=KILL:when={n}"]
        killed = subprocess.run(
            [*inject, *child(url, root, CRASH_RANGE, CRASH_RATE)],
            capture_output=True, text=True, timeout=180, env=ENV, cwd=REPO, check=False,
        )  # fmt: skip
        wrong = dest_wrong_bytes(dest, source)
        lies = range_lies(dest, source, CRASH_SIZE, CRASH_RANGE)
        resumed = resume(url, root, CRASH_RANGE)
        ok = resumed == "ok" and same(dest, source)
        leftovers = sorted(
            p.name for p in root.iterdir() if p.name != dest.name and ".objget-batch." not in p.name
        )
        row = f"Ray ranges: SIGKILL at {name}"
        summary.trial(row, correct=ok and not leftovers, wrong_bytes=wrong, ckpt_lies=lies)
        if killed.returncode not in (-signal.SIGKILL, 0) or wrong or lies or not ok or leftovers:
            failures.append((name, n, killed.returncode, wrong, lies, resumed, leftovers))
    summary.note("Ray ranges: SIGKILL at rename", f"calls in one run (per thread): {calls}")
    assert not failures, failures


def test_ray_range_snapshots_of_a_running_download_resume_correctly(
    web, make_object, tmp_path, summary, trials
):
    source = make_object("ray-power.bin", POWER_SIZE)
    url = f"{web.url}/ray-power.bin"
    rng = random.Random(1414)
    runs, per_run = trials(2, 10), 4
    failures = []
    claimed = []
    for r in range(runs):
        image = make_ext4(tmp_path / f"disk-{r}.img", IMAGE)
        copies = [tmp_path / f"snap-{r}-{k}.img" for k in range(per_run)]
        with loop_mount(image, tmp_path / "live", OPTIONS) as live:
            dest = live / "ray-power.bin"
            log = tmp_path / f"writer-{r}.log"
            with open(log, "wb") as out:
                writer = subprocess.Popen(
                    child(url, live, POWER_RANGE, POWER_RATE), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=REPO,
                    start_new_session=True,
                )  # fmt: skip
            try:
                wait_for(Path(f"{dest}.objget-lock").exists, 60, proc=writer)
                time.sleep(rng.uniform(0.0, 0.5))  # start-up: the first range checkpoints
                snapshot(writer.pid, image, copies[0])
                got = lambda: range_claimed(dest, POWER_SIZE, POWER_RANGE)  # noqa: E731,B023
                wait_for(lambda: got() > 0, 60, proc=writer)  # noqa: B023
                left = (POWER_SIZE - got()) / (2 * POWER_RATE)  # two tasks at a time
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
            assert status == 0, log.read_text()
            assert same(dest, source)
        image.unlink()
        for copy in copies:
            with loop_mount(copy, tmp_path / "snap") as snap:
                dest = snap / "ray-power.bin"
                wrong = dest_wrong_bytes(dest, source)
                lies = range_lies(dest, source, POWER_SIZE, POWER_RANGE)
                claimed.append(range_claimed(dest, POWER_SIZE, POWER_RANGE))
                resumed = resume(url, snap, POWER_RANGE)  # on the "rebooted" file system
                ok = resumed == "ok" and same(dest, source)
                summary.trial(POWER_ROW, correct=ok, wrong_bytes=wrong, ckpt_lies=lies)
                if wrong or lies or not ok:
                    failures.append((copy.name, wrong, lies, resumed))
            copy.unlink()
    kept = sum(1 for c in claimed if c > 0)
    summary.note(
        POWER_ROW,
        f"{len(claimed)} snapshots; {kept} held range checkpoints with bytes to resume "
        f"(mean {sum(claimed) / max(1, len(claimed)) / MiB:.1f} MiB of {POWER_SIZE // MiB} MiB)",
    )
    assert not failures, failures
    assert kept >= len(claimed) // 2, f"too few snapshots caught saved progress: {claimed}"
