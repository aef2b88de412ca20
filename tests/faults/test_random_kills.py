"""Random kills: >= 50 SIGKILLs at random moments of 64-256 MiB downloads, with a random `-j`
and `--part-size` for every run, then one last run to the end.

`--limit-rate` keeps each run short enough that the kills land mid-download. After every kill
the destination must be absent and the checkpoint must claim only bytes that are on disk;
the last run must leave a byte-identical file. The bytes nginx served beyond the object size
(re-fetched because a kill lost them) are reported in the summary.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from ._harness import (
    MiB,
    ckpt_lies,
    dest_wrong_bytes,
    kill,
    run,
    same,
    served_bytes,
    start,
    wait_for,
)

SIZES = (64 * MiB, 128 * MiB, 256 * MiB)
WORKERS = (1, 2, 3, 4, 8, 16)
PART_SIZES = ("256K", "1M", "3M", "5M", "8M", "32M")
ROW = "random SIGKILL mid-download (64-256 MiB)"
AVG_TRANSFER = 0.6  # seconds a run transfers on average before its kill


def one_kill(url: str, dest: Path, rate: int, rng: random.Random, log: Path) -> int:
    """Start a run with random settings, kill it at a random moment; its exit status."""
    args = [url, dest, "-q", "-j", rng.choice(WORKERS), "--part-size", rng.choice(PART_SIZES)]
    args += ["--limit-rate", str(rate)]
    proc = start(args, log)
    try:
        if rng.random() < 0.1:  # sometimes while it starts up (HEAD, lock, first checkpoint)
            time.sleep(rng.uniform(0.0, 0.8))
        else:
            part = Path(f"{dest}.objget-part")
            wait_for(part.exists, 60, proc=proc)
            time.sleep(rng.uniform(0.0, 2 * AVG_TRANSFER))
    finally:
        status = kill(proc)
    return status


def test_random_sigkills_then_resume(web, make_object, tmp_path, summary, trials):
    kills_wanted = trials(51, 210)
    rng = random.Random(20240606)
    per_object = -(-kills_wanted // len(SIZES))
    kills = 0
    failures = []
    for index, size in enumerate(SIZES):
        name = f"kill-{size // MiB}.bin"
        source = make_object(name, size)
        url = f"{web.url}/{name}"
        dest = tmp_path / name
        _, skip = served_bytes(web.access_log)
        rate = int(size / (per_object * AVG_TRANSFER) * 0.8)
        done_early = 0
        object_kills = 0
        while object_kills < per_object:
            status = one_kill(url, dest, rate, rng, tmp_path / f"run-{index}.log")
            wrong = dest_wrong_bytes(dest, source)
            lies = ckpt_lies(dest, source)
            if status == 0:  # it finished before the kill: check it and start this one over
                done_early += 1
                ok = same(dest, source)
                summary.trial(ROW, correct=ok, wrong_bytes=0 if ok else wrong, ckpt_lies=lies)
                if not ok:
                    failures.append((name, "finished early but wrong", wrong))
                dest.unlink()
                continue
            object_kills += 1
            kills += status == -signal.SIGKILL
            summary.trial(ROW, correct=True, wrong_bytes=wrong, ckpt_lies=lies)
            if status != -signal.SIGKILL or wrong or lies:
                failures.append((name, status, wrong, lies))
        final = run([url, dest, "-q", "--json"], timeout=300)
        ok = final.rc == 0 and same(dest, source)
        summary.trial(ROW, correct=ok, wrong_bytes=dest_wrong_bytes(dest, source))
        if not ok:
            failures.append((name, "final run", final.rc, final.err))
        time.sleep(0.3)  # nginx logs a request when its (killed) connection is closed
        sent, _ = served_bytes(web.access_log, skip)
        refetched = sent - size * (1 + done_early)
        summary.note(
            ROW,
            f"{size // MiB} MiB: {object_kills} kills, re-fetched {refetched / MiB:.1f} MiB "
            f"({refetched / size:.1%} of the object; {refetched / max(1, object_kills) / MiB:.2f}"
            " MiB per kill)",
        )
        leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".log"))
        if leftovers != sorted(f"kill-{s // MiB}.bin" for s in SIZES[: index + 1]):
            failures.append((name, "leftovers", leftovers))
    assert kills >= kills_wanted, f"only {kills} kills landed"
    assert not failures, failures
