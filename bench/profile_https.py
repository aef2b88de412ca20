"""Profile objget's HTTPS byte path against curl: nginx with TLS on loopback, one large file.

```
.venv/bin/python -m bench.profile_https                       # 1 GiB, 5 interleaved reps
.venv/bin/python -m bench.profile_https --reps 7 --jobs 1,4 --pyspy --native
.venv/bin/python -m bench.profile_https --jobs 1 --variant old-j1=/path/to/old/src,-j,1
```

Every repetition runs curl (`--cacert`), objget with default settings (adaptive streams) and
objget with each `--jobs` ceiling, in an order rotated per repetition; each run is timed by
`/usr/bin/time` (wall, user, sys, peak RSS), its file size checked, then deleted and `sync`ed
(untimed). Each objget mode runs once untimed first, byte-compiling its source tree into a
pycache of the run's own (`PYTHONPYCACHEPREFIX`), so no mode pays for compiling in its
timed runs. `--variant NAME=PYTHONPATH[,ARG...]` adds objget from another source tree with
extra arguments (A/B of a change in the same interleaved run). `--pyspy` then records one more
run of each objget mode with `py-spy record --format raw --threads` and sorts the samples into
where the time goes: the TLS read (OpenSSL decrypt + recv, GIL released), pwrite, GIL waits,
Python frames on the byte path, request setup, checkpoint saves, the main loop, start-up.
`--native` splits the TLS read further into libcrypto and the recv syscall. py-spy:
`.venv/bin/pip install py-spy`. `--trace` runs each objget mode once more under
`bench.stream_trace`: when the stream controller changed the count, at what CPU, and why.

The machine may be shared: read medians and ranges, and compare modes of the same run only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import stream_trace  # noqa: E402
from bench.execute import tree_cpu_seconds  # noqa: E402
from bench.model import parse_size  # noqa: E402
from bench.pyspy_summary import RATE, render_profile, summarize_raw  # noqa: E402

MiB = 1024 * 1024
TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Mode:
    name: str
    argv: tuple[str, ...]  # without URL/dest
    env: tuple[tuple[str, str], ...] = ()
    objget: bool = True


@dataclass(frozen=True)
class Run:
    mode: str
    rep: int
    wall: float
    user: float
    sys: float
    rss_kib: int
    flush: float  # `sync` right after the run: writeback the tool left behind (objget: ~0)
    server: float = 0.0  # CPU seconds nginx (master and workers) spent during the run
    busiest: float = 0.0  # ... of which the busiest nginx worker spent (one core at most)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def pair(self) -> float:
        """Client and server CPU: on loopback they share the cores, so wall >= pair / cores."""
        return self.cpu + self.server


def modes_for(args: argparse.Namespace, ca: Path, pycache: Path) -> list[Mode]:
    """curl, objget (defaults, each -j) and the variants. Every objget mode byte-compiles into
    one pycache of this run's (`pycache`), whatever the environment says: a tree without
    .pyc files (PYTHONDONTWRITEBYTECODE=1, as here) paid ~50 ms of CPU compiling objget in
    every run, 8% of a 512 MiB download, against a tree with them (`--variant main=...`)."""
    og = (sys.executable, "-m", "objget", "-q", "--ca-bundle", str(ca))
    cache = ("PYTHONPYCACHEPREFIX", str(pycache))
    out = [
        Mode("curl", ("curl", "-sS", "--fail", "--cacert", str(ca)), objget=False),
        Mode("objget", og, env=(cache,)),
    ]
    out += [Mode(f"objget -j{j}", (*og, "-j", str(j)), env=(cache,)) for j in args.jobs]
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        path, *extra = rest.split(",")
        tree = ("PYTHONPATH", str(Path(path).resolve()))
        out.append(Mode(name, (*og, *extra), env=(tree, cache)))
    return out


def command(mode: Mode, url: str, dest: Path) -> list[str]:
    if mode.objget:
        return [*mode.argv, url, str(dest)]
    return [*mode.argv, "-o", str(dest), url]


def run_env(mode: Mode) -> dict[str, str]:
    drop = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(mode.env)
    env.setdefault("PYTHONPATH", str(REPO / "src"))
    return env


def timed(mode: Mode, rep: int, url: str, dest: Path, size: int, work: Path, server: int) -> Run:
    out = work / "time.txt"
    cmd = [TIME, "-f", "%e %U %S %M", "-o", str(out), *command(mode, url, dest)]
    before = tree_cpu_seconds([server])
    workers = worker_cpu(server)
    done = subprocess.run(
        cmd, env=run_env(mode), capture_output=True, text=True, timeout=900, check=False
    )
    served = tree_cpu_seconds([server]) - before
    after = worker_cpu(server)
    busiest = max((after[p] - workers.get(p, 0.0) for p in after), default=0.0)
    if done.returncode != 0:
        raise SystemExit(f"{mode.name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    got = dest.stat().st_size
    if got != size:
        raise SystemExit(f"{mode.name}: wrote {got} bytes, expected {size}")
    wall, user, sys_, rss = out.read_text().split()[-4:]
    started = time.perf_counter()
    subprocess.run(["sync"], check=False, timeout=600)
    flush = time.perf_counter() - started
    cleanup(dest)
    return Run(
        mode.name, rep, float(wall), float(user), float(sys_), int(rss), flush, served, busiest
    )


def worker_cpu(master: int) -> dict[int, float]:
    """CPU seconds (user+sys) of each of nginx's worker processes (the master's children).

    Which worker accepts a connection is the kernel's choice (nginx 1.22 on Linux: one
    EPOLLEXCLUSIVE wait per worker on the listening socket): when all of a client's
    connections land on one worker, the server side of the pair has one core, whatever the
    client does. The busiest worker's share of the server's CPU shows it per run."""
    out: dict[int, float] = {}
    for pid in _children(master):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            continue
    return kids


def trace(mode: Mode, url: str, dest: Path) -> list[str]:
    """The stream controller's changes in one run of `mode` (`bench.stream_trace`)."""
    env = run_env(mode)
    env["PYTHONPATH"] += os.pathsep + str(REPO)  # the tracer, beside the mode's objget
    lines = stream_trace.run([*mode.argv[4:], url, str(dest)], env, mode.argv[0])
    cleanup(dest)
    return [ln.removeprefix("trace ") for ln in lines]


def cleanup(dest: Path) -> None:
    for p in dest.parent.glob(dest.name + "*"):
        p.unlink()
    subprocess.run(["sync"], check=False, timeout=300)


# --- py-spy ---------------------------------------------------------------------------------


def pyspy(
    mode: Mode, url: str, dest: Path, out: Path, native: bool, svg: bool
) -> dict[str, object]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    slug = mode.name.replace(" ", "_")
    raw = out / f"pyspy-{slug}{'-native' if native else ''}.txt"
    base = [exe, "record", "--threads", "-r", str(RATE)]
    base += ["--native"] if native else ["--nonblocking"]
    cmd = [*base, "--format", "raw", "-o", str(raw), "--", *command(mode, url, dest)]
    subprocess.run(cmd, env=run_env(mode), check=True, capture_output=True, timeout=900)
    cleanup(dest)
    if svg:
        pic = raw.with_suffix(".svg")
        cmd = [*base, "-o", str(pic), "--", *command(mode, url, dest)]
        subprocess.run(cmd, env=run_env(mode), check=True, capture_output=True, timeout=900)
        cleanup(dest)
    summary = summarize_raw(raw, native=native)
    return {"mode": mode.name, "native": native, "raw": str(raw), **summary}


# --- report ---------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def report(runs: list[Run], modes: list[Mode], size: int) -> str:
    by: dict[str, list[Run]] = collections.defaultdict(list)
    for r in runs:
        by[r.mode].append(r)
    curl = {r.rep: r for r in by["curl"]}
    gib = size / (1024 * MiB)
    lines = [
        "| mode | wall s | MiB/s | CPU s (user+sys) | user s | sys s | speed × curl "
        "(per rep) | CPU × curl (per rep) | wall + sync s | durable speed × curl | "
        "peak RSS MiB | server CPU s | busiest worker share | pair CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in modes:
        rs = by[m.name]
        speed = [curl[r.rep].wall / r.wall for r in rs if r.rep in curl]
        cpu = [r.cpu / curl[r.rep].cpu for r in rs if r.rep in curl]
        durable = [
            (curl[r.rep].wall + curl[r.rep].flush) / (r.wall + r.flush) for r in rs if r.rep in curl
        ]
        lines.append(
            f"| {m.name} | {spread([r.wall for r in rs])} | "
            f"{statistics.median([size / MiB / r.wall for r in rs]):.0f} | "
            f"{spread([r.cpu for r in rs])} | {spread([r.user for r in rs])} | "
            f"{spread([r.sys for r in rs])} | {spread(speed)} | {spread(cpu)} | "
            f"{spread([r.wall + r.flush for r in rs])} | {spread(durable)} | "
            f"{statistics.median([r.rss_kib / 1024 for r in rs]):.0f} | "
            f"{spread([r.server for r in rs])} | "
            f"{spread([r.busiest / r.server if r.server else 0.0 for r in rs])} | "
            f"{spread([r.pair for r in rs])} |"
        )
    lines.append(
        f"\n{len(by['curl'])} interleaved reps, {gib:g} GiB; median (min–max); ratios are per "
        "repetition against curl's run of the same repetition. `wall + sync`: the run plus a "
        "`sync` right after it, i.e. until the bytes are on disk (objget fsyncs before it "
        "returns; curl leaves the writeback to the kernel). `server CPU`: nginx's (master and "
        "workers) during the run; `busiest worker share`: the part of it one nginx worker "
        "spent (1.00: every connection on one worker, whose core caps the server side); "
        "`pair`: client + server, which share the cores on loopback."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--jobs", default="1,4", help="objget -j ceilings to add (comma list, or '')")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=PYTHONPATH[,ARG...]",
                    help="objget from another source tree, with extra arguments (e.g. "
                    "old=../src,-j,1)")  # fmt: skip
    ap.add_argument("--pyspy", action="store_true", help="profile each objget mode once")
    ap.add_argument("--native", action="store_true", help="py-spy --native as well")
    ap.add_argument("--svg", action="store_true", help="also write py-spy flame graphs (SVG)")
    ap.add_argument("--only-pyspy", action="store_true", help="skip the timed repetitions")
    ap.add_argument("--trace", action="store_true", help="one traced run per objget mode: "
                    "when the stream controller changed the count, and why")  # fmt: skip
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--dest-dir",
        type=Path,
        default=None,
        help="where the downloads go (default: in workdir); /dev/shm takes the disk out",
    )
    ap.add_argument("--out", type=Path, default=None, help="results dir (default: in workdir)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.jobs = [int(j) for j in args.jobs.split(",") if j.strip()]
    size = parse_size(args.size)
    for tool in ("curl", TIME):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian packages curl, time)")

    from tests._servers.nginx import Nginx

    work = Path(tempfile.mkdtemp(prefix="objget-profile-https-", dir=args.workdir))
    out = args.out or work / "out"
    out.mkdir(parents=True, exist_ok=True)
    root = work / "root"
    root.mkdir()
    with open(root / "big.bin", "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    dest = Path(tempfile.mkdtemp(prefix="objget-dl-", dir=args.dest_dir)) / "big.bin"
    try:
        with Nginx(root, work / "nginx", tls=True) as web:
            assert web.ca_path is not None
            url = f"{web.url}/big.bin"
            modes = modes_for(args, web.ca_path, work / "pycache")
            warm = ["curl", "-sS", "--cacert", str(web.ca_path), "-o", "/dev/null", url]
            subprocess.run(warm, check=True, timeout=600)
            for m in modes:  # untimed: each objget mode compiles its tree into the pycache
                if m.objget:
                    subprocess.run(command(m, url, dest), env=run_env(m), check=True,
                                   capture_output=True, timeout=900)  # fmt: skip
                    cleanup(dest)
            runs: list[Run] = []
            for rep in range(0 if args.only_pyspy else args.reps):
                order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
                for m in order:
                    r = timed(m, rep, url, dest, size, work, web.pid)
                    runs.append(r)
                    print(f"rep {rep} {m.name:14} wall {r.wall:6.2f} s  cpu {r.cpu:5.2f} s "
                          f"(user {r.user:.2f} sys {r.sys:.2f})  nginx {r.server:5.2f} s  "
                          f"(busiest worker {r.busiest:5.2f} s)  sync {r.flush:5.2f} s  "
                          f"rss {r.rss_kib // 1024} MiB",
                          flush=True)  # fmt: skip
            traces = {m.name: trace(m, url, dest) for m in modes if m.objget and args.trace}
            profiles = []
            if args.pyspy or args.only_pyspy:
                for m in modes:
                    if m.objget:
                        for native in (False, True) if args.native else (False,):
                            profiles.append(pyspy(m, url, dest, out, native, args.svg))
                            print(render_profile(profiles[-1]), flush=True)
        table = report(runs, modes, size) if runs else ""
        table += "".join(f"\n\ntrace {m}:\n" + "\n".join(t) for m, t in traces.items())
        print("\n" + table)
        rows = [asdict(r) for r in runs]
        record = {"runs": rows, "profiles": profiles, "traces": traces}
        (out / "profile_https.json").write_text(json.dumps(record, indent=1))
        (out / "profile_https.md").write_text(
            table + "\n\n" + "\n\n".join(render_profile(p) for p in profiles) + "\n"
        )
        print(f"\nresults: {out}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(dest.parent, ignore_errors=True)
        shutil.rmtree(work / "pycache", ignore_errors=True)
        if not args.keep and args.out is not None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
