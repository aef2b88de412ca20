"""OSS protocol: oss2 and objget through the OSS-protocol test server (real OSS signatures,
`x-oss-hash-crc64ecma`, so both verify CRC-64), which runs in its own process in front of
SeaweedFS. The server is a Python relay: its own limit is measured by the `[limit]` curl row.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

from bench import tools
from bench.context import Context
from bench.model import BENCH_DIR, PEER_RUNNER, PYTHON, Builder, MiB, RunRecord, Target, Tool
from bench.scenarios import Row, run_groups

REGION = "cn-hangzhou"  # the test server's default V4 region


@contextlib.contextmanager
def oss_front(ctx: Context) -> Iterator[str]:
    """Start bench/oss_front.py; yields its endpoint; stopped by PID."""
    proc = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "oss_front.py"), ctx.seaweed.s3_url, "--key", "bench:bench",
         "--anonymous"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ctx.env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("OSS_ENDPOINT="):
            raise RuntimeError(f"OSS server did not start: {line!r}")
        ctx.server_pids["oss-front"] = [proc.pid, *ctx.server_pids["seaweed"]]
        yield line.split("=", 1)[1]
    finally:
        ctx.server_pids.pop("oss-front", None)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def _py(mode: str, threads: int) -> Builder:
    return lambda t: [PYTHON, str(PEER_RUNNER), mode, "--dest", str(t.dest), "--endpoint",
                      str(t.oss_endpoint), "--bucket", t.bucket, "--key", t.key, "--store",
                      str(t.store_dir), "--concurrency", str(threads)]  # fmt: skip


def _objget_oss(jobs: int) -> Builder:
    def build(t: Target) -> list[str]:
        cmd = [*tools.OBJGET_CLI, f"oss://{t.bucket}/{t.key}", str(t.dest), "-q",
               "--endpoint", str(t.oss_endpoint), "--region", REGION]  # fmt: skip
        return cmd + (["-j", str(jobs)] if jobs else [])

    return build


OSS_ENV = {"OSS_ACCESS_KEY_ID": "bench", "OSS_ACCESS_KEY_SECRET": "bench"}


def oss_tools() -> list[Tool]:
    rows = [
        Tool(id="curl", label="[limit] curl (1 stream, unsigned) through the OSS server",
             kind="cli", family="reference", server="oss-front", build=tools.curl),
        Tool(id="objget-oss", label="objget CLI oss:// (default, no -j)", kind="cli",
             family="objget", needs="objget-cli", server="oss-front", env=OSS_ENV,
             build=_objget_oss(0)),
        Tool(id="objget-oss-j16", label="objget CLI oss:// -j16", kind="cli", family="objget",
             needs="objget-cli", server="oss-front", env=OSS_ENV, build=_objget_oss(16)),
    ]  # fmt: skip
    for threads in (4, 16):
        rows.append(Tool(id=f"oss2-t{threads}", label=f"oss2.resumable_download "
                         f"threads={threads}", kind="py", server="oss-front",
                         build=_py("oss2", threads), max_reps=tools.OSS2_REPS))  # fmt: skip
        rows.append(Tool(id=f"objget-resumable-t{threads}", label=f"objget.resumable_download "
                         f"threads={threads}", kind="py", family="objget",
                         needs="objget-resumable", server="oss-front",
                         build=_py("objget-resumable", threads)))  # fmt: skip
    return rows


def oss(ctx: Context, size: int, reps: int) -> list[RunRecord]:
    obj = ctx.source(size)
    cand = [t for t in oss_tools() if ctx.wanted(t)]
    with oss_front(ctx) as endpoint:
        url = f"{endpoint}/{ctx.bucket}/{obj.key}"
        # untimed: the server computes the object's CRC-64 on first use by reading it once
        subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", url], check=True,
                       timeout=ctx.timeout(size), env=ctx.env)  # fmt: skip
        ctx.log(f"OSS-protocol server up at {endpoint}")
        rows = [Row(t, ctx.target(obj, url, oss_endpoint=endpoint)) for t in cand]
        group = f"{size // MiB} MiB via the OSS-protocol server"
        return run_groups(ctx, "oss", [(group, rows)], reps)
