"""The physical limits behind the bench's ratios (python -m bench.bounds).

0. The disk ceiling (bench/disk.py): what this disk persists per second when nothing else
   runs, written from memory four ways (no sync; pwrite then fsync; sync_file_range per
   32 MiB window; O_DIRECT), next to which every download below is read.
1. What durability costs: one object from nginx (plain and TLS), curl vs `objget.download`
   vs the same call with `os.fsync`/`os.fdatasync` made no-ops (objget fsyncs the file before
   renaming it into place and fdatasyncs once a second for its checkpoint; curl leaves dirty
   pages, and the bench's `sync` after each run is untimed): the durable vs no-sync rows.
2. CRC-64's share of a download: the same nginx download with and without a CRC-64/XZ
   checksummer (as for OSS objects), interleaved.
3. What a small download's time is made of: an 8 MiB object from nginx by curl and by the
   objget CLI (whole processes, with `-q`), against the interpreter alone (`python -c pass`),
   the command's front (`python -c "import objget.cli"`, `objget --help`: no engine, no
   transport), the download's imports (the engine and its transport) and `objget.download`
   in-process. objget's bytecode is compiled first, as an install does: with
   PYTHONDONTWRITEBYTECODE set and no `__pycache__`, every run would compile objget's sources.
4. Before vs after (`ab`, with `--baseline DIR`: another checkout's `src/`, e.g.
   `git archive main src | tar -x -C /tmp/base`): at each of `--ab-sizes`, interleaved
   repetitions (the order rotated each time) of curl -> file, the objget CLI (`-q`, whole
   process) and `objget.download()` (bench/peer_runner.py, the call alone) from this checkout
   and from DIR, all from one nginx; medians, x curl paired per repetition, peak RSS.

In-process times of the download call for objget, whole process for curl; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests._servers.nginx import Nginx

import objget
from bench import disk
from objget.backends.http import HttpBackend
from objget.engine._downloader import Downloader
from objget.integrity.crc64 import Crc64, crc64

MiB = 1024 * 1024
PARTS = ("disk", "durability", "startup", "crc", "ab")
PEER_RUNNER = Path(__file__).with_name("peer_runner.py")


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def durability(root: Path, work: Path, name: str, reps: int) -> dict[str, list[float]]:
    real = os.fsync, os.fdatasync
    out = work / "out"
    res: dict[str, list[float]] = {}

    def nosync(on: bool) -> None:
        os.fsync, os.fdatasync = ((lambda fd: None), (lambda fd: None)) if on else real

    for tls in (False, True):
        with Nginx(root, work / f"nginx-{int(tls)}", tls=tls) as web:
            url = f"{web.url}/{name}"
            cfg = objget.DownloadConfig(ca_bundle=str(web.ca_path)) if tls else None
            curl = ["curl", "-sS", "-o", str(out), url]
            curl += ["--cacert", str(web.ca_path)] if tls else []
            for _ in range(reps):
                for tool in ("curl", "objget", "objget, fsync/fdatasync as no-ops"):
                    key = f"{'https' if tls else 'http'}: {tool}"
                    if tool == "curl":
                        secs = _timed(lambda: subprocess.run(curl, check=True))  # noqa: B023
                    else:
                        nosync(tool != "objget")
                        try:
                            secs = _timed(lambda: objget.download(url, str(out), config=cfg))  # noqa: B023
                        finally:
                            nosync(False)
                    res.setdefault(key, []).append(secs)
                    out.unlink()
                    os.sync()
    return res


def crc_share(root: Path, work: Path, name: str, reps: int) -> dict[str, list[float]]:
    crc = 0
    with open(root / name, "rb") as f:
        while chunk := f.read(8 * MiB):
            crc = crc64(chunk, crc)

    class CrcHttp(HttpBackend):
        def checksummer(self, meta: objget.ObjectMeta) -> Crc64:
            return Crc64(expected=crc)

    out = work / "crc-out"
    res: dict[str, list[float]] = {}
    with Nginx(root, work / "nginx-crc") as web, Downloader() as dl:
        url = f"{web.url}/{name}"
        for rep in range(reps):
            for label in ("plain", "crc64") if rep % 2 == 0 else ("crc64", "plain"):
                backend = (CrcHttp if label == "crc64" else HttpBackend)(dl.transport)
                secs = _timed(lambda: dl.download_object(backend, url, out))  # noqa: B023
                res.setdefault(label, []).append(secs)
                out.unlink()
                os.sync()
    return res


def startup(root: Path, work: Path, name: str, reps: int) -> dict[str, list[float]]:
    import compileall
    import sys

    out = work / "small-out"
    py = sys.executable
    res: dict[str, list[float]] = {}
    for pkg in objget.__path__:
        compileall.compile_dir(pkg, quiet=1)
    engine = "import os, objget.cli, objget.engine._downloader, objget.engine._engine; os._exit(0)"
    with Nginx(root, work / "nginx-small") as web:
        url = f"{web.url}/{name}"
        runs: dict[str, Callable[[], object]] = {
            "small: python -c pass": lambda: subprocess.run([py, "-c", "pass"], check=True),
            "small: python -c 'import objget.cli'": lambda: subprocess.run(
                [py, "-c", "import objget.cli"], check=True
            ),
            "small: objget --help": lambda: subprocess.run(
                [py, "-m", "objget", "--help"], check=True, stdout=subprocess.DEVNULL
            ),
            "small: the download's imports (engine, transport; os._exit)": lambda: subprocess.run(
                [py, "-c", engine], check=True
            ),
            "small: curl": lambda: subprocess.run(["curl", "-sS", "-o", str(out), url], check=True),
            "small: objget CLI -q": lambda: subprocess.run(
                [py, "-m", "objget", "-q", url, str(out)], check=True
            ),
            "small: objget.download() in-process": lambda: objget.download(url, str(out)),
        }
        for _ in range(reps):
            for key, run in runs.items():
                res.setdefault(key, []).append(_timed(run))
                out.unlink(missing_ok=True)
                os.sync()
    return res


def _measured(cmd: list[str], env: dict[str, str], rss: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one whole process."""
    t = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss), *cmd], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    secs = time.perf_counter() - t
    return secs, int(rss.read_text().split()[-1]) / 1024, done.stdout


def before_after(
    root: Path, work: Path, names: dict[int, str], reps: int, baseline: str
) -> list[str]:
    """Interleaved A/B of this checkout's objget against `baseline` (a src/ dir), from nginx."""
    import compileall
    import sys

    out, rss = work / "ab-out", work / "ab-rss"
    here = str(Path(objget.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    srcs = {"": here, " (baseline)": baseline}
    for src in srcs.values():  # compiled first, as an install does (see `startup`)
        compileall.compile_dir(Path(src) / "objget", quiet=1)
    lines = []
    with Nginx(root, work / "nginx-ab") as web:
        for size, name in names.items():
            url = f"{web.url}/{name}"
            rows: dict[str, list[tuple[float, float]]] = {}
            runs: list[tuple[str, list[str], dict[str, str]]] = [
                ("curl -> file", ["curl", "-sS", "-o", str(out), url], env)
            ]
            for tag, src in srcs.items():
                e = {**env, "PYTHONPATH": src}
                runs.append((f"objget CLI{tag}", [sys.executable, "-m", "objget", "-q", url,
                                                   str(out)], e))  # fmt: skip
                runs.append((f"objget.download(){tag}", [sys.executable, str(PEER_RUNNER),
                             "objget-lib", "--url", url, "--dest", str(out)], e))  # fmt: skip
            for rep in range(reps):
                k = rep % len(runs)
                for label, cmd, e in runs[k:] + runs[:k]:
                    secs, peak, stdout = _measured(cmd, e, rss)
                    if label.startswith("objget.download"):  # the call alone
                        secs = float(json.loads(stdout.strip().splitlines()[-1])["seconds"])
                    rows.setdefault(label, []).append((secs, peak))
                    out.unlink()
                    os.sync()
            curl = [s for s, _ in rows["curl -> file"]]
            lines.append(f"ab {size} MiB ({reps} interleaved runs, baseline {baseline}):")
            for label, got in rows.items():
                secs = [s for s, _ in got]
                paired = statistics.median(c / s for c, s in zip(curl, secs, strict=True))
                lines.append(
                    f"  {label}: median {statistics.median(secs):.3f} s, {paired:.2f}x curl "
                    f"(paired), peak RSS {statistics.median(p for _, p in got):.1f} MiB "
                    f"({', '.join(f'{s:.3f}' for s in secs)})"
                )
            for what in ("objget CLI", "objget.download()"):
                new = statistics.median(s for s, _ in rows[what])
                old = statistics.median(s for s, _ in rows[f"{what} (baseline)"])
                lines.append(f"  {what}: {new:.3f} s vs {old:.3f} s baseline ({new / old:.2f}x)")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bounds", description=__doc__)
    p.add_argument("--size", type=int, default=1024, help="object size in MiB (1024)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (3)")
    p.add_argument("--small", type=int, default=8, help="small object size in MiB (8)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {','.join(PARTS)}")
    p.add_argument("--baseline", help="another checkout's src/ dir: the `ab` part (before vs "
                   "after) runs only with it")  # fmt: skip
    p.add_argument("--ab-sizes", default="64,256,1024", help="`ab` sizes in MiB (64,256,1024)")
    p.add_argument("--workdir", help="parent of the temp dir (default: system temp); the disk "
                   "ceiling and the downloads are measured on its filesystem")  # fmt: skip
    a = p.parse_args()
    parts = {x.strip() for x in a.parts.split(",") if x.strip()}
    if parts - set(PARTS):
        p.error(f"unknown part(s): {', '.join(sorted(parts - set(PARTS)))}")
    if not a.baseline:
        parts.discard("ab")
    ab_sizes = [int(x) for x in a.ab_sizes.split(",") if x.strip()] if "ab" in parts else []
    ab: list[str] = []
    results: dict[str, list[float]] = {}
    crc: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="objget-bounds-", dir=a.workdir) as tmp:
        work = Path(tmp)
        root = work / "root"
        root.mkdir()
        work.chmod(0o755)  # nginx workers run unprivileged
        if "disk" in parts:
            print("\n".join(disk.table(disk.ceiling(work, a.size, a.reps), a.size)), flush=True)
        name = "obj"
        with open(root / name, "wb") as f:
            for _ in range(a.size if parts & {"durability", "crc"} else 0):
                f.write(os.urandom(MiB))
        with open(root / "small", "wb") as f:
            f.write(os.urandom(a.small * MiB))
        for size in ab_sizes:
            with open(root / f"ab-{size}", "wb") as f:
                for _ in range(size):
                    f.write(os.urandom(MiB))
        if ab_sizes:
            names = {size: f"ab-{size}" for size in ab_sizes}
            ab = before_after(root, work, names, a.reps, str(Path(a.baseline).resolve()))
            print("\n".join(ab), flush=True)
        if "durability" in parts:
            results.update(durability(root, work, name, a.reps))
        if "startup" in parts:
            results.update(startup(root, work, "small", 3 * a.reps))
        if "crc" in parts:
            crc = crc_share(root, work, name, a.reps + a.reps % 2)
    for key, secs in {**results, **crc}.items():
        runs = ", ".join(f"{s:.2f}" for s in secs)
        print(f"{key}: median {statistics.median(secs):.3f} s ({runs})")
    for proto in ("http", "https") if "durability" in parts else ():
        durable = statistics.median(results[f"{proto}: objget"])
        nosync = statistics.median(results[f"{proto}: objget, fsync/fdatasync as no-ops"])
        print(f"{proto}: durable / no-sync objget: {durable / nosync:.2f}x the time "
              f"({durable:.3f} s vs {nosync:.3f} s)")  # fmt: skip
    if crc:
        plain, with_crc = statistics.median(crc["plain"]), statistics.median(crc["crc64"])
        print(f"CRC-64 share of wall time: {(with_crc - plain) / with_crc:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
