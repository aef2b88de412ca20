"""Crash points: SIGKILL exactly at every rename / fsync / fdatasync of one run, and at sampled
pwrite64 calls (`strace -f -e inject=SYSCALL:signal=KILL:when=N`), then the same command again.

After each kill: the destination is absent (or already complete and correct), the checkpoint
claims only bytes that are in the temp file; after the resume the file is byte-identical.
"""

from __future__ import annotations

import signal

import objget

from ._harness import MiB, ckpt_lies, count_calls, dest_wrong_bytes, run, same, sample

SIZE = 8 * MiB
# ~2.7 s: durable saves at 1 s and 2 s (a fresh download saves first at its first interval),
# so a kill also lands in a save that replaces an earlier checkpoint
ARGS = ("-q", "-j", "2", "--part-size", "1M", "--limit-rate", "3M")
SYSCALLS = ("rename", "fsync", "fdatasync", "pwrite64")


def test_sigkill_at_every_durability_call_then_resume(web, make_object, tmp_path, summary, trials):
    source = make_object("crash.bin", SIZE)
    url = f"{web.url}/crash.bin"
    trace = tmp_path / "discover.strace"
    probe = tmp_path / "probe.bin"
    first = run(
        [url, probe, *ARGS],
        prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=" + ",".join(SYSCALLS)],
    )
    assert first.rc == 0, first.err
    assert same(probe, source)
    calls = count_calls(trace, SYSCALLS)
    assert calls.get("rename", 0) >= 2 and calls.get("fdatasync", 0) >= 1, calls
    points = [
        (name, n) for name in ("rename", "fsync", "fdatasync") for n in range(1, calls[name] + 1)
    ]
    points += [("pwrite64", n) for n in sample(calls["pwrite64"], trials(6, 24))]
    failures = []
    for i, (name, n) in enumerate(points):
        dest = tmp_path / f"t{i}" / "crash.bin"
        dest.parent.mkdir()
        inject = [
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            f"inject={name}:signal=KILL:when={n}",
        ]
        killed = run([url, dest, *ARGS], prefix=inject)
        row = f"crash point: SIGKILL at {name}"
        wrong = dest_wrong_bytes(dest, source)
        lies = ckpt_lies(dest, source)
        try:  # the same download again, in-process (the CLI resume is the random-kill class)
            objget.download(url, str(dest))
            resumed: object = "ok"
        except Exception as exc:
            resumed = exc
        ok = resumed == "ok" and same(dest, source)
        leftovers = sorted(p.name for p in dest.parent.iterdir() if p.name != "crash.bin")
        summary.trial(row, correct=ok and not leftovers, wrong_bytes=wrong, ckpt_lies=lies)
        if killed.rc not in (-signal.SIGKILL, 0) or wrong or lies or not ok or leftovers:
            failures.append((name, n, killed.rc, wrong, lies, resumed, leftovers))
    summary.note("crash point: SIGKILL at rename", f"calls in one run: {calls}")
    assert not failures, failures


def test_checkpoint_temp_files_of_a_crashed_run_are_removed(web, make_object, tmp_path):
    """A kill between the checkpoint temp file's creation and its rename leaves
    `DEST.objget-ckpt.tmp`; the next run on DEST (holding the lock) removes it."""
    source = make_object("small-crash.bin", MiB)
    dest = tmp_path / "small-crash.bin"
    stale = tmp_path / "small-crash.bin.objget-ckpt.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / "unrelated.objget-ckpt.tmp"  # another destination's: kept
    other.write_bytes(b"x")
    done = run([f"{web.url}/small-crash.bin", dest, "-q"])
    assert done.rc == 0, done.err
    assert same(dest, source)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, dest.name])
