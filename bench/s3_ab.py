"""s3:// before vs after, with the server's CPU (python -m bench.s3_ab --baseline DIR).

One SeaweedFS (`weed server` with S3, tests/_servers/seaweed.py, anonymous), one object of
`--size` MiB uploaded with one PutObject (as the bench does) and read once, untimed, so it is
hot in the server's cache. Then `--reps` interleaved repetitions (the order rotated each time)
of: the objget CLI from this checkout and from `--baseline` (another checkout's `src/`), each
on the plain-HTTP S3 URL (the bench's loopback row) and, for this checkout, as s3://; boto3
`download_file` with its defaults (bench/peer_runner.py: the call alone is its time, the whole
process its wall); curl -> file (one stream, the reference); with `--fixed`, objget.download()
with the stream count pinned. Every run writes a fresh file
that is compared with the source, deleted, and `sync`ed, untimed (bench/execute.py).

Per row, medians: time (whole process for CLIs, the call for boto3), wall, client CPU (the
process tree's user+sys), server CPU (the weed process's user+sys during the run: master,
volume, filer and S3 gateway are one process), other CPU (the machine's busy time besides
both: other load, should be ~0), and objget x boto3 paired per repetition. `--probe` adds
rows of a raw range reader to /dev/null (bench/s3_probe.py) with the given arguments, to see
what a request pattern costs the server alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.execute import empty_dir, run_command, verify_file

MiB = 1024 * 1024
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUCKET = "bench"


def rows(
    url: str,
    s3_url: str,
    key: str,
    dest: Path,
    base: str | None,
    probes: list[str],
    fixed: list[int],
) -> list[tuple[str, list[str], dict[str, str], bool]]:
    """(label, command, env additions, timed by the tool) of every row."""
    py = sys.executable
    cli = [py, "-m", "objget", "-q"]
    s3 = [
        f"s3://{BUCKET}/{key}",
        str(dest),
        "--endpoint-url",
        s3_url,
        "--no-sign-request",
        "--addressing-style",
        "path",
    ]
    here = str(ROOT / "src")
    out: list[tuple[str, list[str], dict[str, str], bool]] = [
        ("objget CLI", [*cli, url, str(dest)], {"PYTHONPATH": here}, False),
        ("objget CLI s3://", [*cli, *s3], {"PYTHONPATH": here}, False),
    ]
    if base:
        out.append(("objget CLI (baseline)", [*cli, url, str(dest)], {"PYTHONPATH": base}, False))
    boto = [
        py,
        str(HERE / "peer_runner.py"),
        "boto3",
        "--endpoint",
        s3_url,
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--dest",
        str(dest),
    ]
    out.append(("boto3 download_file (default)", boto, {"PYTHONPATH": ""}, True))
    out.append(("curl -> file", ["curl", "-sS", "--fail", "-o", str(dest), url], {}, False))
    for n in fixed:  # the whole process, as the CLI rows
        code = (
            f"import objget; objget.download({url!r}, {str(dest)!r}, config=objget."
            f"DownloadConfig(min_workers={n}, max_workers={n}))"
        )
        out.append(
            (
                f"objget.download() {n} streams, pinned",
                [py, "-c", code],
                {"PYTHONPATH": here},
                False,
            )
        )
    for i, spec in enumerate(probes):
        probe = [py, str(HERE / "s3_probe.py"), "--url", url, *spec.split()]
        out.append((f"probe {i}: {spec or 'whole object, 1 stream'}", probe, {}, False))
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.s3_ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", type=int, default=1024, help="object size in MiB (1024)")
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions (7)")
    p.add_argument("--baseline", help="another checkout's src/ dir (a before row)")
    p.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="ARGS",
        help="a bench/s3_probe.py row, e.g. '--part 8 --streams 4' (repeatable)",
    )
    p.add_argument(
        "--fixed",
        default="",
        help="comma list of pinned stream counts: rows of "
        "objget.download() from this checkout with min = max workers = N",
    )
    p.add_argument(
        "--only",
        default="",
        help="comma list of substrings: run only the rows "
        "whose label holds one (e.g. 'objget CLI,boto3')",
    )
    p.add_argument("--workdir", help="parent of the temp dir (default: system temp)")
    a = p.parse_args()
    import compileall

    from tests._servers.seaweed import SeaweedFS

    for src in filter(None, (str(ROOT / "src"), a.baseline)):
        compileall.compile_dir(Path(src) / "objget", quiet=1)  # as an install does
    base = str(Path(a.baseline).resolve()) if a.baseline else None
    with tempfile.TemporaryDirectory(prefix="objget-s3ab-", dir=a.workdir) as tmp:
        work = Path(tmp)
        src, dst = work / "obj", work / "dst"
        with open(src, "wb") as f:
            for _ in range(a.size):
                f.write(os.urandom(MiB))
        with SeaweedFS(work / "weed") as weed:
            weed.create_bucket(BUCKET)
            weed.put(BUCKET, "obj", src)
            url = f"{weed.s3_url}/{BUCKET}/obj"
            dest = dst / "obj.out"
            env0 = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            fixed = [int(x) for x in a.fixed.split(",") if x.strip()]
            table = rows(url, weed.s3_url, "obj", dest, base, a.probe, fixed)
            only = [x for x in a.only.split(",") if x]
            table = [r for r in table if not only or any(x in r[0] for x in only)]
            empty_dir(dst)
            run_command(
                ["curl", "-sS", "-o", "/dev/null", url], env=env0, timeout=600, workdir=work
            )  # fmt: skip  (hot in the server's cache)
            got: dict[str, list[tuple[float, float, float, float, float]]] = {}
            for rep in range(a.reps):
                k = rep % len(table)
                for label, cmd, extra, timed in table[k:] + table[:k]:
                    env = {**env0, **{n: v for n, v in extra.items() if v}}
                    m = run_command(
                        cmd,
                        env=env,
                        timeout=600,
                        workdir=work,
                        server_pids=[weed.pid],
                        timed_by_tool=timed,
                    )
                    probe = label.startswith("probe")
                    if not m.ok or not (probe or verify_file(dest, a.size * MiB, "", src)):
                        print(f"{label}: FAILED {m.error or 'bytes differ'}", flush=True)
                        empty_dir(dst)
                        continue
                    assert m.seconds is not None
                    got.setdefault(label, []).append(
                        (
                            m.seconds,
                            m.wall,
                            m.client_cpu or 0.0,
                            m.server_cpu or 0.0,
                            m.other_cpu or 0.0,
                        )
                    )
                    empty_dir(dst)
                print(f"rep {rep + 1}/{a.reps} done (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\n{a.size} MiB from SeaweedFS on loopback, {a.reps} interleaved reps, medians")
    print("| row | time s | wall s | client CPU s | server CPU s | other CPU s | x boto3 |")
    print("|---|---|---|---|---|---|---|")
    boto = [r[0] for r in got.get("boto3 download_file (default)", [])]
    for label, runs in got.items():
        med = [statistics.median(r[i] for r in runs) for i in range(5)]
        ratio = "–"
        if boto and len(boto) == len(runs):
            ratio = f"{statistics.median(b / r[0] for b, r in zip(boto, runs, strict=True)):.2f}"
        print(
            f"| {label} | "
            + " | ".join(f"{x:.3f}" if i < 2 else f"{x:.2f}" for i, x in enumerate(med))
            + f" | {ratio} |"
        )
        print(
            f"|   runs | {' '.join(f'{r[0]:.3f}' for r in runs)} | | | "
            f"{' '.join(f'{r[3]:.2f}' for r in runs)} | | |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
