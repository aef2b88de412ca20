"""Command line of the harness: `python -m bench [--quick] [--reps N] [--sizes ...] ...`."""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import charts, env, many, oss, pages, report, resume, scenarios, servers, tools
from bench.context import Context
from bench.model import REPO, human_size, parse_size

SCENARIOS = ["loopback", "oss", "wan", "https", "resume", "many"]
TITLES = {
    "loopback": "Loopback: SeaweedFS (S3/HTTP) on 127.0.0.1, + nginx plain-HTTP limit rows",
    "oss": "OSS protocol: through the OSS-protocol test server (signatures, CRC-64)",
    "wan": '"WAN": every connection capped by nginx limit_rate',
    "https": "HTTPS: nginx with TLS on loopback",
    "resume": "Resume after SIGKILL at 40%",
    "many": "Many small objects",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: small sizes, 1 repetition (< 2 min), for CI",
    )
    p.add_argument("--reps", type=int, help="repetitions (default 5; --quick 1)")
    p.add_argument("--sizes", help="loopback sizes, e.g. 8M,256M,1G (the default)")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma list of {','.join(SCENARIOS)} (default: all)",
    )
    p.add_argument(
        "--tools", default="", help="comma list of substrings of tool ids to run (curl always runs)"
    )
    p.add_argument("--out", help="output dir (default bench/results; --quick: bench/work/quick)")
    p.add_argument("--oss-size", help="object size for `oss` (default 256M; --quick 32M)")
    p.add_argument("--wan-size", help="wan object size (default 512M; --quick 16M)")
    p.add_argument("--wan-rate", default="20m", help="nginx limit_rate per connection (20m)")
    p.add_argument(
        "--wan-capped",
        help="one more wan group, SIZE@RATE (default 64M@4m: issue 16's capped link, a short "
        "transfer; not with --quick or an explicit --wan-size/--wan-rate); 'none' skips it",
    )
    p.add_argument(
        "--wan-chunk",
        help="nginx sendfile_max_chunk for wan (default nginx's 2m: each request's first "
        "2 MiB go at once, then one chunk per chunk/rate s); 64k paces every byte evenly",
    )
    p.add_argument(
        "--baseline",
        help="another checkout's src/ dir: adds the loopback and wan rows objget-base "
        "(before vs after)",
    )
    p.add_argument("--https-size", help="https object size (default 1G; --quick 32M)")
    p.add_argument("--resume-size", help="resume object size (default 1G; --quick 64M)")
    p.add_argument("--resume-reps", type=int, help="resume repetitions (default min(reps, 2))")
    p.add_argument("--many-reps", type=int, help="many repetitions (default min(reps, 3))")
    p.add_argument("--many-count", type=int, help="objects in `many` (default 2000; --quick 100)")
    p.add_argument("--workdir", help="parent dir for the run's temp dir (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (servers' logs)")
    p.add_argument(
        "--pages",
        choices=pages.MODES,
        default="as-is",
        help="memory each timed run starts from: as-is (default: what the run before left) or "
        "warm (as much as the run writes populated and freed just before it; bench/pages.py)",
    )
    a = p.parse_args(argv)
    q = a.quick
    a.reps = a.reps or (1 if q else 5)
    a.sizes = [parse_size(s) for s in (a.sizes or ("8M,32M" if q else "8M,256M,1G")).split(",")]
    a.oss_size = parse_size(a.oss_size or ("32M" if q else "256M"))
    explicit_wan = a.wan_size is not None or a.wan_rate != "20m"
    capped = a.wan_capped or ("none" if q or explicit_wan else "64M@4m")
    a.wan_size = parse_size(a.wan_size or ("16M" if q else "512M"))
    a.wan_groups = [(a.wan_size, a.wan_rate)]
    if capped != "none":
        size, _, rate = capped.partition("@")
        if not rate:
            p.error("--wan-capped takes SIZE@RATE, e.g. 64M@4m")
        a.wan_groups.append((parse_size(size), rate))
    a.https_size = parse_size(a.https_size or ("32M" if q else "1G"))
    a.resume_size = parse_size(a.resume_size or ("64M" if q else "1G"))
    a.resume_reps = a.resume_reps or min(a.reps, 2)
    a.many_reps = a.many_reps or min(a.reps, 3)
    a.many_count = a.many_count or (100 if q else 2000)
    a.out = Path(a.out or (REPO / "bench" / ("work/quick" if q else "results")))
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(a.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    a.tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    return a


def _run_scenario(ctx: Context, name: str, a: argparse.Namespace, data: dict[str, Any]) -> None:
    t0 = time.monotonic()
    ctx.log(f"== {name}")
    if name == "loopback":
        data["records"] += scenarios.loopback(ctx, a.sizes, a.reps)
    elif name == "oss":
        data["records"] += oss.oss(ctx, a.oss_size, a.reps)
    elif name == "wan":
        for size, rate in a.wan_groups:
            data["records"] += scenarios.wan(ctx, size, rate, a.reps, a.wan_chunk)
    elif name == "https":
        data["records"] += scenarios.https(ctx, a.https_size, a.reps)
    elif name == "resume":
        data["resume"] += resume.resume(ctx, a.resume_size, a.resume_reps)
    elif name == "many":
        data["records"] += many.many(ctx, a.many_count, a.many_reps)
    data["meta"]["scenario_s"][name] = round(time.monotonic() - t0, 1)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    started = time.monotonic()
    # An installed wheel has its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE set
    # would compile objget's sources at every CLI start (~80 ms). Compile once, as pip does.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    if a.baseline:
        tools.BASELINE_SRC = str(Path(a.baseline).resolve())
        compileall.compile_dir(tools.BASELINE_SRC, quiet=1)
    base_env = env.base_env()
    avail = env.detect(base_env)
    workdir = Path(tempfile.mkdtemp(prefix="objget-bench-", dir=a.workdir))
    workdir.chmod(0o755)  # nginx workers run as an unprivileged user and must read src/
    ctx = Context(workdir=workdir, env=base_env, avail=avail, tool_filter=a.tools,
                  warm_pages=a.pages == "warm")  # fmt: skip
    ctx.log(f"bench: workdir {workdir}; available: "
            + ", ".join(k for k, v in avail.items() if k and v))  # fmt: skip
    data: dict[str, Any] = {"records": [], "resume": [], "meta": {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "reps": a.reps, "workdir": str(workdir), "scenario_titles": TITLES,
        "scenario_s": {}, "servers": "", "notes": ctx.notes, "load_start": _load(),
        "pages": a.pages, "reported_kib_start": pages.reported_kib(),
    }}  # fmt: skip
    # versions (and objget's git revision) as of the start of the run
    weed_bin = shutil.which("weed", path=str(Path(sys.executable).parent))
    data["meta"]["versions"] = env.versions(weed_bin)
    crashed: list[str] = []
    origins = []
    weed = None
    try:
        if {"loopback", "oss", "resume", "many"} & set(a.scenarios):
            weed = servers.seaweed(workdir / "seaweed")
            t0 = time.monotonic()
            weed.start()
            weed.create_bucket(ctx.bucket)
            ctx.seaweed = weed
            ctx.server_pids["seaweed"] = [weed.pid]
            ctx.log(f"SeaweedFS up at {weed.s3_url} in {time.monotonic() - t0:.1f}s")
            origins.append("SeaweedFS (`weed server` with S3, tests/_servers/seaweed.py)")
            ctx.oss_endpoint = weed.s3_url  # loopback/resume OSS rows: SeaweedFS directly
            ctx.server_pids["oss"] = ctx.server_pids["seaweed"]
            origins.append("loopback and resume oss2 / objget.resumable_download rows talk to "
                           "SeaweedFS's S3 port directly (anonymous; the OSS V1 signature is "
                           "ignored), as in peer-bench; the `oss` scenario goes through the "
                           "OSS-protocol test server (tests/_servers/oss_server.py, run by "
                           "bench/oss_front.py)")  # fmt: skip
        origins.append("nginx (tests/_servers/nginx.py: 2 workers, sendfile)")
        for name in a.scenarios:
            try:
                _run_scenario(ctx, name, a, data)
            except Exception:
                crashed.append(name)
                ctx.notes.append(
                    f"scenario {name} crashed: " + traceback.format_exc().strip().splitlines()[-1]
                )
                traceback.print_exc()
    finally:
        if weed is not None:
            weed.stop()
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = data["meta"]
    meta["wall_s"] = time.monotonic() - started
    meta["load_end"] = _load()
    meta["reported_kib_end"] = pages.reported_kib()
    meta["servers"] = "; ".join(origins)
    meta["skipped"] = ctx.skipped
    meta["commands"] = ctx.commands
    meta["sizes"] = [human_size(s) for s in a.sizes]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(  # no machine paths in a committed file
        report.scrub(
            json.dumps({**data, "records": [r.to_json() for r in data["records"]]}, indent=1),
            str(workdir),
        )
    )
    plain = {**data, "records": [r.to_json() for r in data["records"]]}
    made = charts.write(a.out, plain)
    path = report.write(a.out, plain, made)
    failed = [r for r in data["records"] if not r.ok]
    failed_resume = [r for r in data["resume"] if not r["final_ok"]]
    ctx.log(f"bench: {len(data['records'])} runs ({len(failed)} failed), "
            f"{len(data['resume'])} resume runs ({len(failed_resume)} failed), "
            f"{meta['wall_s']:.0f}s; report: {path}")  # fmt: skip
    return 1 if crashed or failed or failed_resume else 0
