"""Resume after SIGKILL: kill the tool's process group once a counting proxy has delivered 40%.

Per tool and repetition: (1) an uninterrupted run through the proxy, (2) a run killed at 40%,
(3) the identical command again. `refetched` = bytes the proxy delivered in (3) / object size;
ideal ≈ 1 − fetched-before-kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from bench import tools
from bench.context import Context, rotated
from bench.execute import Measurement, empty_dir, listing, run_command, verify_file
from bench.model import PEER_RUNNER, PYTHON, MiB, Target, Tool
from bench.proxy import CountingProxy

KILL_AT = 0.40


def resume_tools() -> list[Tool]:
    def oss(mode: str, threads: int) -> Tool:
        fam = "peer" if mode == "oss2" else "objget"
        name = "oss2.resumable_download" if mode == "oss2" else "objget.resumable_download"
        return Tool(id=f"{mode}-t{threads}", label=f"{name} threads={threads}", kind="py",
                    family=fam, needs="" if fam == "peer" else "objget-resumable",
                    build=lambda t: [PYTHON, str(PEER_RUNNER), mode, "--dest", str(t.dest),
                                     "--endpoint", str(t.extra["oss_proxy"]), "--bucket",
                                     t.bucket, "--key", t.key, "--store", str(t.store_dir),
                                     "--concurrency", str(threads)])  # fmt: skip

    return [
        Tool(id="curl", label="curl -C - (1 stream)", kind="cli", family="reference",
             build=lambda t: tools.curl(t, resume=True)),
        Tool(id="aria2c-x8", label="aria2c -x8 -s8 (default --auto-save-interval=60)",
             kind="cli", build=lambda t: tools.aria2c(t, ["-x8", "-s8"])),
        oss("oss2", 16),
        Tool(id="objget", label="objget CLI (default, no -j)", kind="cli", family="objget",
             needs="objget-cli", build=tools.objget_cli),
        Tool(id="objget-j16", label="objget CLI -j16", kind="cli", family="objget",
             needs="objget-cli", build=lambda t: tools.objget_cli(t, jobs=16)),
        oss("objget-resumable", 16),
        *_baseline(),
    ]  # fmt: skip


def _baseline() -> list[Tool]:
    """The objget CLI (default) from `--baseline` src: before vs after in the same run."""
    if not tools.BASELINE_SRC:
        return []
    return [Tool(id="objget-base", label="objget CLI (default) from --baseline src",
                 kind="cli", family="objget", needs="objget-cli", build=tools.objget_cli,
                 env={"PYTHONPATH": tools.BASELINE_SRC})]  # fmt: skip


def _killer(holder: dict[str, Any], proxy: CountingProxy) -> None:
    proc = holder.get("proc")
    holder["delivered_at_kill"] = proxy.delivered
    if proc is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        holder["killed"] = True


def _one(ctx: Context, tool: Tool, target: Target, proxies: dict[str, CountingProxy],
         rep: int) -> dict[str, Any]:  # fmt: skip
    proxy = proxies["oss" if tool.id.startswith(("oss2", "objget-resumable")) else "http"]
    cmd = tool.build(target)
    ctx.commands.setdefault("resume", {}).setdefault(tool.label, " ".join(cmd))
    size = target.size
    timeout = ctx.timeout(size)

    def run(on_start: Callable[[subprocess.Popen[bytes]], None] | None = None) -> Measurement:
        return run_command(cmd, env={**ctx.env, **tool.env}, timeout=timeout,
                           workdir=ctx.workdir, on_start=on_start)  # fmt: skip

    res: dict[str, Any] = {"tool": tool.id, "label": tool.label, "family": tool.family,
                           "rep": rep, "size": size}  # fmt: skip
    # (1) uninterrupted, through the same proxy
    ctx.clean()
    proxy.reset()
    m = run()
    res["uninterrupted_s"] = m.wall if m.ok else None
    res["uninterrupted_ok"] = m.ok and verify_file(
        target.dest, size, target.sha256, target.source_path
    )
    res["uninterrupted_fetched"] = proxy.delivered / size
    # (2) killed at 40%
    ctx.clean()
    proxy.reset()
    holder: dict[str, Any] = {}

    def arm(proc: subprocess.Popen[bytes]) -> None:
        holder["proc"] = proc

    proxy.arm(int(size * KILL_AT), lambda: _killer(holder, proxy))
    m_kill = run(on_start=arm)
    res["killed"] = bool(holder.get("killed"))
    res["kill_phase_s"] = m_kill.wall
    res["fetched_before_kill"] = holder.get("delivered_at_kill", proxy.delivered) / size
    left = listing(ctx.dst) + [(f"store/{n}", s) for n, s in listing(ctx.store)]
    res["left_on_disk"] = left
    # (3) the identical command again
    proxy.reset()
    m2 = run()
    res["restart_s"] = m2.wall
    res["refetched"] = proxy.delivered / size
    res["final_ok"] = m2.ok and verify_file(target.dest, size, target.sha256, target.source_path)
    res["error"] = m2.error or m.error
    ctx.clean()
    ctx.log(f"  [resume rep {rep + 1}] {tool.label}: killed={res['killed']} "
            f"before={res['fetched_before_kill']:.0%} refetched={res['refetched']:.0%} "
            f"restart={m2.wall:.2f}s uninterrupted={m.wall:.2f}s ok={res['final_ok']}")  # fmt: skip
    return res


def resume(ctx: Context, size: int, reps: int) -> list[dict[str, Any]]:
    obj = ctx.source(size)
    cand = [t for t in resume_tools() if ctx.wanted(t)]
    seaweed_port = int(ctx.seaweed.s3_url.rsplit(":", 1)[1])
    oss_port = int(str(ctx.oss_endpoint).rsplit(":", 1)[1])
    results: list[dict[str, Any]] = []
    with CountingProxy(seaweed_port) as http_proxy, CountingProxy(oss_port) as oss_proxy:
        base = f"http://127.0.0.1:{http_proxy.port}"
        target = ctx.target(
            obj,
            f"{base}/{ctx.bucket}/{obj.key}",
            s3_endpoint=base,
            extra={"oss_proxy": f"http://127.0.0.1:{oss_proxy.port}"},
        )
        proxies = {"http": http_proxy, "oss": oss_proxy}
        for rep in range(reps):
            for tool in rotated(cand, rep, reps):
                results.append(_one(ctx, tool, target, proxies, rep))
    empty_dir(ctx.dst)
    return results


def resume_size_default(quick: bool) -> int:
    return 64 * MiB if quick else 1024 * MiB
