"""Where the bytes of a killed download go: the split behind the resume scenario's re-fetch.

    python -m bench.resume_split [--size-mib 1024] [--reps 3] [--jobs N] [--stop] [--seaweed]

nginx serves a random object through the byte-counting proxy; the objget CLI downloads it and is
killed (SIGKILL, its process group) once the proxy has delivered 40 %. With `--stop` the
process is first stopped (SIGSTOP) and `ss -tmi` records its sockets' receive queues, then it
is killed. Then, with objget's own decoders: the durable checkpoint, the live record, what a
resume keeps (`_recover.resume_spans`), and which 4 KiB blocks of the data file hold the
object's bytes (written by the killed run). Per kill it prints, in MiB:

    delivered   bytes the proxy passed to the client (headers included)
    recv-q      in the client's kernel receive queues (ss; --stop only)
    written     blocks of the data file that hold the object's bytes
    durable     what the durable checkpoint covers
    live        what the live record's segments add
    kept        what a resume keeps (durable + segments that read back)
    unrecorded  written, but in no record
    dropped     in the live record, but not kept (CRC mismatch)
    user        delivered - recv-q - written: in the process's buffers (and headers)
    waste       what the same command run again fetched beyond what the kill left missing

With `--seaweed` the object comes from SeaweedFS (as in the bench's resume scenario).

Not part of the bench run: a measuring tool for the live record (docs/checkpoints.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.proxy import CountingProxy

MiB = 1024 * 1024
BLOCK = 4096
ROOT = Path(__file__).resolve().parent.parent


def _make_object(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def _recv_queues(port: int) -> tuple[int, int]:
    """Sum of Recv-Q over client sockets whose peer is the proxy at `port`, and their count."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", "dst", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout  # fmt: skip
    total = count = 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            total += int(fields[0])
            count += 1
    return total, count


def _written(part: Path, src: Path) -> int:
    """Bytes of `part` (in 4 KiB blocks) equal to the object's and not all zero."""
    import numpy as np

    done = 0
    with open(part, "rb") as a, open(src, "rb") as b:
        while True:
            x = a.read(64 * MiB)
            y = b.read(len(x))
            if not x:
                return done
            n = len(x) // BLOCK * BLOCK
            xa = np.frombuffer(x[:n], dtype=np.uint64).reshape(-1, BLOCK // 8)
            ya = np.frombuffer(y[:n], dtype=np.uint64).reshape(-1, BLOCK // 8)
            same = (xa == ya).all(axis=1) & (ya != 0).any(axis=1)
            done += int(same.sum()) * BLOCK


def _union(spans: list[Any]) -> int:
    total, end = 0, 0
    for s in sorted(spans, key=lambda s: s.start):
        if s.stop > end:
            total += s.stop - max(s.start, end)
            end = s.stop
    return total


def _records(dest: Path) -> dict[str, int]:
    from objget.engine import _checkpoint as ck
    from objget.engine._live import load_live, segment_crc
    from objget.engine._recover import resume_spans

    paths = ck.Paths.beside(str(dest))
    saved = ck.load(paths.checkpoint)
    out = {"durable": 0, "live": 0, "kept": 0, "segments": 0}
    if saved is None:
        return out
    out["durable"] = sum(s.stop - s.start for s in saved.spans)
    try:
        live = load_live(paths.live)
    except Exception:  # a measuring tool: an unusable record counts as none
        live = None
    if live is not None:
        out["segments"] = len(live.segments)
        out["live"] = _union([*saved.spans, *live.segments]) - out["durable"]
    found = resume_spans(paths, saved, None, crc=segment_crc(None))
    out["kept"] = sum(s.stop - s.start for s in found.spans)
    out["live_kept"] = sum(s.stop - s.start for s in found.live)
    return out


def one(url: str, dest: Path, src: Path, proxy: CountingProxy, size: int, *,
        jobs: int, stop: bool) -> dict[str, Any]:  # fmt: skip
    for p in dest.parent.iterdir():
        p.unlink()
    cmd = [sys.executable, "-m", "objget", url, str(dest), "-q"]
    if jobs:
        cmd += ["-j", str(jobs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    res: dict[str, Any] = {}
    done = threading.Event()

    def kill() -> None:
        if stop:
            os.killpg(proc.pid, signal.SIGSTOP)
            res["delivered"] = proxy.delivered
            res["recvq"], res["sockets"] = _recv_queues(proxy.port)
        else:
            res["delivered"] = proxy.delivered
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        done.set()

    proxy.reset()
    proxy.arm(int(size * 0.4), kill)
    proc.wait(timeout=300)
    if not done.is_set():
        raise RuntimeError(f"not killed: {proc.stderr.read().decode() if proc.stderr else ''}")
    time.sleep(0.2)
    res["delivered_after"] = proxy.delivered
    part = Path(f"{dest}.objget-part")
    res["written"] = _written(part, src) if part.exists() else 0
    res.update(_records(dest))
    proxy.reset()  # the same command again: what the resume fetches beyond what it misses
    again = subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
    if again.returncode != 0:
        raise RuntimeError(f"the resume failed: {again.stderr.decode()[-2000:]}")
    res["waste"] = proxy.delivered - (size - res["kept"])
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--stop", action="store_true", help="SIGSTOP and read ss before the kill")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--seaweed", action="store_true", help="SeaweedFS upstream (as the bench)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "src"))
    from tests._servers.nginx import Nginx

    size = a.size_mib * MiB
    with tempfile.TemporaryDirectory(dir=a.workdir, prefix="objget-split-") as tmp:
        base = Path(tmp)
        (base / "www").mkdir()
        (base / "dst").mkdir()
        src = base / "www" / "big.bin"
        _make_object(src, size)
        with contextlib.ExitStack() as stack:
            if a.seaweed:
                from tests._servers.seaweed import SeaweedFS

                weed = stack.enter_context(SeaweedFS(base / "weed"))
                weed.create_bucket("split")
                weed.put("split", "big.bin", src)
                upstream, path = weed.port, "split/big.bin"
            else:
                web = stack.enter_context(Nginx(base / "www", base / "nginx"))
                upstream, path = int(re.sub(r".*:", "", web.url)), "big.bin"
            proxy = stack.enter_context(CountingProxy(upstream))
            url = f"http://127.0.0.1:{proxy.port}/{path}"
            head = ("delivered", "recv-q", "written", "durable", "live", "kept", "unrecorded",
                    "dropped", "user", "waste", "segs")  # fmt: skip
            print(" ".join(f"{h:>10}" for h in head))
            for _ in range(a.reps):
                r = one(url, base / "dst" / "big.bin", src, proxy, size, jobs=a.jobs,
                        stop=a.stop)  # fmt: skip
                recorded = r["durable"] + r["live"]
                row = (
                    r["delivered"], r.get("recvq", 0), r["written"], r["durable"], r["live"],
                    r["kept"], max(0, r["written"] - recorded), recorded - r["kept"],
                    r["delivered"] - r.get("recvq", 0) - r["written"], r["waste"],
                )  # fmt: skip
                print(" ".join(f"{v / MiB:10.1f}" for v in row), f"{r['segments']:>10}")


if __name__ == "__main__":
    main()
