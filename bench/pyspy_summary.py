"""Where an objget run's time goes, from a `py-spy record --format raw --threads` file: the
samples sorted into categories (the TLS read, pwrite, GIL waits, Python frames on the byte path,
request setup, checkpoint saves, the main loop, start-up), per worker and main threads.
`bench.profile_https --pyspy` records the runs and prints these summaries.
"""

from __future__ import annotations

import collections
from pathlib import Path

__all__ = ["RATE", "categorize", "render_profile", "summarize_raw"]

RATE = 250  # py-spy samples per second


_BYTE_PATH = ("Copier.copy",)
_TLS_READ = ("SSLSocket.read", "DirectTlsReader.readinto", "ResponseBody._fill")
_CATEGORIES = (
    "TLS read: decrypt (libcrypto)",
    "TLS read: recv syscall (kernel copy)",
    "TLS read: other native (libssl, _ssl)",
    "TLS read (C: decrypt + recv, GIL released; with the reader's own lines)",
    "pwrite (page-cache copy)",
    "GIL wait (taking the GIL back after a C call)",
    "Python frames on the byte path",
    "request setup (connect, TLS handshake, request)",
    "checkpoint save (fdatasync, fsync, rename)",
    "main loop (controller, progress, joins)",
    "start-up (imports, CLI)",
    "other",
)


def categorize(frames: list[str], *, native: bool) -> str:
    """One sample's category from its stack (root first). Without --native, time inside a C
    call is charged to the Python frame that made it."""
    names = [f.split(" (")[0] for f in frames]
    leaf = frames[-1]
    leaf_py = ".py:" in leaf
    lib = "" if leaf_py else leaf.rsplit("(", 1)[-1].rstrip(")")
    waiting = not leaf_py and "pthread_cond_timedwait" in names[-3:]
    if waiting and any(n in names for n in (*_BYTE_PATH, "Engine._stream")):
        return "GIL wait (taking the GIL back after a C call)"
    if any(n in names for n in _TLS_READ):
        if leaf_py:
            if names[-1] in _TLS_READ and not native:
                return "TLS read (C: decrypt + recv, GIL released; with the reader's own lines)"
            return "Python frames on the byte path"
        if "libcrypto" in lib:
            return "TLS read: decrypt (libcrypto)"
        if lib.startswith("libc") and names[-1] in ("read", "recv", "recvfrom"):
            return "TLS read: recv syscall (kernel copy)"
        return "TLS read: other native (libssl, _ssl)"
    if "pwrite_all" in names and (not leaf_py or names[-1] == "pwrite_all"):
        return "pwrite (page-cache copy)"
    if any(n in names for n in _BYTE_PATH):
        return "Python frames on the byte path"
    if "Engine._stream" in names or "Engine._fetch" in names:
        return "request setup (connect, TLS handshake, request)"
    if any(n.endswith("save") for n in names) or "replace_durably" in names:
        return "checkpoint save (fdatasync, fsync, rename)"
    if "Engine.run" in names or "Engine._worker" in names:
        return "main loop (controller, progress, joins)"
    if "_find_and_load" in names or "<module>" in names or "Command.main" in names:
        return "start-up (imports, CLI)"
    return "other"


def summarize_raw(path: Path, *, native: bool) -> dict[str, object]:
    """Samples per category, for the worker threads and the main thread separately; samples
    with no Python frame at all (interpreter start-up and finalization, which py-spy's
    sampling inflates many times on a loaded machine) are counted apart."""
    cats: dict[str, collections.Counter[str]] = {
        "workers": collections.Counter(),
        "main": collections.Counter(),
    }
    own: collections.Counter[str] = collections.Counter()
    bare = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        thread = parts[0] if parts[0].startswith("thread (") else ""
        frames = parts[1:] if thread else parts
        if not any(".py:" in f for f in frames):
            bare += n
            continue
        kind = "workers" if "objget-worker" in thread or "Engine._worker" in stack else "main"
        cats[kind][categorize(frames, native=native)] += n
        own[frames[-1].split(" (")[0] + ("" if ".py:" in frames[-1] else " [native]")] += n
    return {
        "no_python_frame": bare,
        "workers": {c: cats["workers"][c] for c in _CATEGORIES if cats["workers"][c]},
        "main": {c: cats["main"][c] for c in _CATEGORIES if cats["main"][c]},
        "top_own": own.most_common(15),
    }


def render_profile(p: dict[str, object]) -> str:
    out = [f"py-spy {p['mode']}{' --native' if p['native'] else ''} ({RATE} Hz; seconds are "
           "sampled thread time while active, not CPU time)"]  # fmt: skip
    for kind in ("workers", "main"):
        cats = p[kind]
        assert isinstance(cats, dict)
        total = sum(cats.values())
        out.append(f"  {kind} threads: {total} samples ({total / RATE:.2f} s)")
        for c, n in cats.items():
            out.append(f"    {100 * n / total:5.1f}%  {n / RATE:6.2f} s  {c}")
    out.append(f"  not counted above: {p['no_python_frame']} samples with no Python frame "
               "(interpreter start-up/finalization)")  # fmt: skip
    out.append("  top own (leaf) frames:")
    top = p["top_own"]
    assert isinstance(top, list)
    for name, n in top[:10]:
        out.append(f"    {n / RATE:6.2f} s  {name}")
    return "\n".join(out)
