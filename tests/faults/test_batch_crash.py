"""The batch's small-object path under crashes and power loss (`objget --recursive` of small
listed objects: one GET each, the files of a group synced together, renamed, a directory
fsync per group, then the journal).

- Crash points: SIGKILL exactly at every rename, link and unlink (`renameat`: the commit of a
  small object's lock file, which holds the object, onto DEST), `flock` (a lock file just
  made, not yet locked), `fsync`, `fdatasync` and `syncfs` (the files of a group made durable
  together) of one run, and at sampled `pwrite64` calls
  (`strace -f -e inject=SYSCALL:signal=KILL:when=N`), then the same batch again.
- Power loss: the batch runs on a loop-mounted ext4 (`noauto_da_alloc,commit=60`); snapshots
  of the image are taken with the writer stopped, each is mounted on a second loop device
  (journal replay = reboot) and the batch resumed from it.

After each kill and on each snapshot: every object's file is absent or byte-identical (no
wrong byte at a destination), every object the journal says is done is on disk and exact (no
bytes claimed that are not there). The resumed batch ends with every object exact, no side
file left (the journal included: a batch in which every object succeeded removes it, and the
crash points include that removal's unlinks and fsyncs), and fetches no object the journal had
as done.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import objget

from ._batch_store import (
    BUCKET,
    PREFIX,
    BatchStore,
    cli_args,
    journal_done,
    journal_lies,
    leftovers,
    objects,
    wrong_bytes,
)
from ._harness import ENV, count_calls, run, sample, start, wait_for
from ._mounts import loop_mount, make_ext4
from .test_power_loss import OPTIONS, snapshot

MiB = 1024 * 1024
RENAMES = ("rename", "renameat", "renameat2")
EVERY = (*RENAMES, "link", "linkat", "unlink", "unlinkat", "flock", "fsync", "fdatasync", "syncfs")
SYSCALLS = (*EVERY, "pwrite64")
POWER_ROW = "batch power loss (ext4 snapshot, journal replay)"


def group_sync_env(tmp: Path) -> dict[str, str]:
    """The environment of a batch that syncs its groups with `syncfs` however much dirty data
    other programs have on this machine (the guard that falls back to an fsync per file is
    tested on its own): a `sitecustomize` that lifts `_syncfs.DIRTY_MOST`."""
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import objget.engine._syncfs as s\ns.DIRTY_MOST = 1 << 62\n"
    )
    path = ENV.get("PYTHONPATH")
    return {**ENV, "PYTHONPATH": f"{site}{os.pathsep}{path}" if path else str(site)}


def resume(store: BatchStore, dest: Path) -> tuple[object, set[str]]:
    """The same batch again, in-process: ("ok" or the error, the keys it fetched)."""
    store.reset()
    options = objget.BackendOptions(endpoint=store.url, anonymous=True, region="us-east-1")
    try:
        result = objget.download_many(f"s3://{BUCKET}/{PREFIX}", dest, options=options)
        outcome: object = "ok" if result.ok else [o.error for o in result.failed]
    except (objget.DownloadError, OSError) as exc:
        outcome = exc
    return outcome, set(store.gets)


def judge(dest: Path, data: dict[str, bytes], store: BatchStore) -> tuple[int, int, str | None]:
    """(wrong bytes at the destinations, journal bytes not on disk, what went wrong with
    the resume or None) for a batch destination after a crash."""
    wrong = wrong_bytes(dest, data)
    lies = journal_lies(dest, data)
    done = {PREFIX + rel for rel in journal_done(dest)}
    outcome, fetched = resume(store, dest)
    problem = None
    if outcome != "ok":
        problem = f"resume: {outcome}"
    elif wrong_bytes(dest, data) or any(not (dest / k[len(PREFIX) :]).is_file() for k in data):
        problem = "resume: a file is missing or wrong"
    elif leftovers(dest):
        problem = f"side files left: {leftovers(dest)}"
    elif fetched & done:
        problem = f"fetched again though journaled done: {sorted(fetched & done)}"
    return wrong, lies, problem


def test_batch_sigkill_at_every_durability_call_then_resume(tmp_path, summary, trials):
    data = objects(7, 24)
    with BatchStore(data) as store:
        trace = tmp_path / "discover.strace"
        probe = tmp_path / "probe"
        env = group_sync_env(tmp_path)
        first = run(
            cli_args(store, probe, "-j", "1"),
            prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=" + ",".join(SYSCALLS)],
            env=env,
        )
        assert first.rc == 0, first.err
        assert wrong_bytes(probe, data) == 0 and not leftovers(probe)  # the journal too
        calls = count_calls(trace, SYSCALLS)
        renames = sum(calls.get(name, 0) for name in RENAMES)
        assert renames >= len(data) - 1 and calls.get("fsync", 0) > 0, calls
        assert calls.get("syncfs", 0) > 0, calls  # the groups' files synced together
        points = [(name, n) for name in EVERY for n in range(1, calls.get(name, 0) + 1)]
        points += [("pwrite64", n) for n in sample(calls["pwrite64"], trials(6, 24))]
        failures = []
        for i, (name, n) in enumerate(points):
            dest = tmp_path / f"t{i}"
            inject = f"inject={name}:signal=KILL:when={n}"
            killed = run(
                cli_args(store, dest, "-j", "1"),
                prefix=["strace", "-f", "-qq", "-o", "/dev/null", "-e", inject],
                env=env,
            )
            wrong, lies, problem = judge(dest, data, store)
            ok = problem is None and killed.rc in (-signal.SIGKILL, 0)
            summary.trial(
                f"batch crash point: SIGKILL at {name}", correct=ok, wrong_bytes=wrong,
                ckpt_lies=lies,
            )  # fmt: skip
            if not ok or wrong or lies:
                failures.append((name, n, killed.rc, wrong, lies, problem, killed.err[-300:]))
    summary.note("batch crash point: SIGKILL at fsync", f"calls in one run: {calls}")
    assert not failures, failures


def test_a_kill_leaves_objects_in_lock_files_that_a_single_download_and_the_rerun_clear(
    tmp_path,
):
    """Killed at its first `syncfs`: the first group's objects are written into their lock
    files (`DEST.objget-lock`, whole, not synced), none is renamed, and no DEST of them
    exists. `objget URL DEST` on one of them takes its lock file as stale (truncated, then
    removed); the batch run again takes the others as stale locks, removes them and leaves
    every object exact, no side file. (Before the lock file was the temp file, the objects
    were in `DEST.objget-part` files beside empty locks.)"""
    data = objects(7, 24)
    with BatchStore(data) as store:
        dest = tmp_path / "out"
        env = group_sync_env(tmp_path)
        killed = run(
            cli_args(store, dest, "-j", "1"),
            prefix=["strace", "-f", "-qq", "-o", "/dev/null", "-e",
                    "inject=syncfs:signal=KILL:when=1"],
            env=env,
        )  # fmt: skip
        assert killed.rc == -signal.SIGKILL, killed.err
        locks = sorted(dest.rglob("*.objget-lock"))
        assert len(locks) >= 2, leftovers(dest)
        assert not list(dest.rglob("*.objget-part"))
        for lock in locks:
            rel = str(lock.relative_to(dest)).removesuffix(".objget-lock")
            assert lock.read_bytes() == data[PREFIX + rel]  # written whole, not renamed
            assert not (dest / rel).exists()
        first = max(locks, key=lambda p: p.stat().st_size)
        rel = str(first.relative_to(dest)).removesuffix(".objget-lock")
        single = run(
            [f"s3://{BUCKET}/{PREFIX}{rel}", dest / rel, "-q", "--no-sign-request",
             "--endpoint-url", store.url, "--region", "us-east-1"],
        )  # fmt: skip
        assert single.rc == 0, single.err
        assert (dest / rel).read_bytes() == data[PREFIX + rel]
        assert not first.exists()
        outcome, _ = resume(store, dest)
        assert outcome == "ok"
        assert wrong_bytes(dest, data) == 0 and not leftovers(dest)
        assert all((dest / k[len(PREFIX) :]).is_file() for k in data)


def test_batch_snapshots_of_a_running_batch_resume_correctly(tmp_path, summary, trials):
    data = objects(11, 60)
    rng = random.Random(99)
    runs, per_run = trials(3, 12), 4
    failures = []
    on_disk: list[int] = []  # objects whose file a snapshot holds
    done_counts: list[int] = []  # objects a snapshot's journal has as done
    delay = 0.03
    with BatchStore(data, delay=delay) as store:
        for r in range(runs):
            image = make_ext4(tmp_path / f"disk-{r}.img", 96 * MiB)
            copies = [tmp_path / f"snap-{r}-{k}.img" for k in range(per_run)]
            with loop_mount(image, tmp_path / "live", OPTIONS) as live:
                dest = live / "out"
                log = tmp_path / f"writer-{r}.log"
                workers = rng.choice((1, 2, 4))
                writer = start(
                    cli_args(store, dest, "-j", workers), log, env=group_sync_env(tmp_path)
                )
                try:
                    wait_for((dest / ".objget-batch.db").exists, 60, proc=writer)
                    t0 = time.monotonic()
                    length = len(data) * delay / workers  # about how long the GETs take
                    moments = sorted(rng.uniform(0.0, length) for _ in copies)
                    for when, copy in zip(moments, copies, strict=True):
                        time.sleep(max(0.0, t0 + when - time.monotonic()))
                        snapshot(writer.pid, image, copy)
                    status = writer.wait(timeout=120)
                finally:
                    if writer.poll() is None:
                        writer.kill()
                        writer.wait(timeout=30)
                assert status == 0, log.read_text()
                assert wrong_bytes(dest, data) == 0 and not leftovers(dest)
            image.unlink()
            for copy in copies:
                with loop_mount(copy, tmp_path / "snap") as snap:
                    dest = snap / "out"
                    done_counts.append(len(journal_done(dest)))
                    on_disk.append(sum((dest / k[len(PREFIX) :]).is_file() for k in data))
                    wrong, lies, problem = judge(dest, data, store)
                    summary.trial(POWER_ROW, correct=problem is None, wrong_bytes=wrong,
                                  ckpt_lies=lies)  # fmt: skip
                    if problem or wrong or lies:
                        failures.append((copy.name, wrong, lies, problem))
                copy.unlink()
    kept = sum(1 for n in on_disk if 0 < n < len(data))
    summary.note(
        POWER_ROW,
        f"{len(on_disk)} snapshots of a {len(data)}-object batch; {kept} caught it part-way; "
        f"object files per snapshot {on_disk}, journaled done {done_counts}",
    )
    assert not failures, failures
    assert kept >= len(on_disk) // 2, f"too few snapshots caught the batch part-way: {on_disk}"
