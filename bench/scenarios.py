"""Table scenarios: loopback (SeaweedFS + nginx limit rows), wan (capped nginx), https (nginx TLS).

Every repetition runs every tool once per size, in an order rotated per repetition (interleaved,
not blocks), so drift hits all tools alike and `x curl` can be paired per repetition.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import servers, stream_trace, tools
from bench.context import Context, rotated, run_one
from bench.model import PYTHON, RunRecord, Target, Tool, human_size


@dataclass(frozen=True)
class Row:
    tool: Tool
    target: Target
    reps: int | None = None  # run in the first `reps` repetitions only (None: tool.max_reps)


def run_groups(
    ctx: Context, scenario: str, groups: list[tuple[str, list[Row]]], reps: int,
    after_rep: Callable[[int], None] | None = None,
) -> list[RunRecord]:  # fmt: skip
    records: list[RunRecord] = []
    for rep in range(reps):
        for group, rows in groups:
            for row in rotated(rows, rep, reps):
                limit = row.reps if row.reps is not None else row.tool.max_reps
                if limit is not None and rep >= limit:
                    continue
                records.append(run_one(ctx, scenario=scenario, group=group, tool=row.tool,
                                       target=row.target, rep=rep))  # fmt: skip
        if after_rep is not None:
            after_rep(rep)
    return records


@contextmanager
def nginx_server(ctx: Context, name: str, *, extra: str = "", tls: bool = False) -> Iterator[Any]:
    ng = servers.nginx(ctx.src, ctx.workdir / name, extra=extra, tls=tls)
    ng.start()
    ctx.server_pids["nginx"] = [ng.pid]
    ctx.log(f"nginx ({name}) up at {ng.url}")
    try:
        yield ng
    finally:
        ng.stop()
        ctx.server_pids.pop("nginx", None)


def loopback(ctx: Context, sizes: list[int], reps: int) -> list[RunRecord]:
    """SeaweedFS over loopback at each size, with curl and objget from nginx beside it; the largest
    size also gets the nginx and disk limit rows."""
    objs = [ctx.source(size) for size in sizes]
    cand = [t for t in tools.loopback_tools() if ctx.wanted(t)]
    limit_tools = [t for t in tools.nginx_limit_tools() if ctx.wanted(t)]
    with nginx_server(ctx, "nginx-plain") as ng:
        groups = []
        for obj in objs:
            # the 64 MiB-part rows compare equal part sizes where that matters (the largest)
            rows = [Row(t, ctx.target(obj, ctx.seaweed_url(obj)))
                    for t in cand if obj is objs[-1] or not t.id.endswith("-p64M")]  # fmt: skip
            # nginx's own rows (curl -> file, objget) at every size; the bounds at the largest
            rows += [Row(t, ctx.target(obj, f"{ng.url}/{obj.key}")) for t in limit_tools
                     if obj is objs[-1] or t.id in tools.NGINX_EVERY_SIZE]  # fmt: skip
            groups.append((human_size(obj.size), rows))
        return run_groups(ctx, "loopback", groups, reps)


def wan(ctx: Context, size: int, rate: str, reps: int, chunk: str | None = None) -> list[RunRecord]:
    """Every connection capped by nginx `limit_rate` (per connection), like an internet path;
    with `chunk`, nginx sends at most that much at once (`sendfile_max_chunk`), so a new
    request no longer gets its first 2 MiB in one lump."""
    obj = ctx.source(size)
    cand = [t for t in tools.wan_tools() if ctx.wanted(t)]
    extra = f"limit_rate {rate};" + (f" sendfile_max_chunk {chunk};" if chunk else "")
    with nginx_server(ctx, "nginx-wan", extra=extra) as ng:
        # curl's one capped stream takes size/rate (~26 s) with a spread of ~2%: two runs
        # give its time; the other rows are paired with curl's median where it did not run
        rows = [Row(t, ctx.target(obj, f"{ng.url}/{obj.key}"), 2 if t.id == "curl" else None)
                for t in cand]  # fmt: skip
        group = f"{human_size(size)}, limit_rate {rate} per connection"
        group += f", sent in {chunk} chunks" if chunk else ""
        return run_groups(ctx, "wan", [(group, rows)], reps)


def https(ctx: Context, size: int, reps: int) -> list[RunRecord]:
    """nginx with TLS on loopback; curl --cacert vs objget --ca-bundle."""
    obj = ctx.source(size)
    cand = [t for t in tools.https_tools() if ctx.wanted(t)]
    with nginx_server(ctx, "nginx-tls", tls=True) as ng:
        if not ng.ca_path:
            raise RuntimeError("nginx fixture gave no CA path for TLS")
        url, ca = f"{ng.url}/{obj.key}", str(ng.ca_path)
        rows = [Row(t, ctx.target(obj, url, ca_path=ca)) for t in cand]
        traced = any(t.id == "objget" for t in cand)
        return run_groups(
            ctx,
            "https",
            [(f"{human_size(size)} over TLS", rows)],
            reps,
            after_rep=(lambda rep: _trace(ctx, rep, url, ca)) if traced else None,
        )


def _trace(ctx: Context, rep: int, url: str, ca: str) -> None:
    """After each HTTPS repetition, one untimed run of objget's default under the stream
    controller's tracer (`bench.stream_trace`), kept in the report's notes: in a run whose
    objget rows swing (they have, twice, while curl's held), what the stream count did."""
    dest = ctx.dst / "traced.out"
    ctx.clean()
    try:
        lines = stream_trace.run([url, str(dest), "--ca-bundle", ca], ctx.env, PYTHON)
        said = "; ".join(" ".join(ln.removeprefix("trace ").split()) for ln in lines)
    except (SystemExit, OSError, subprocess.SubprocessError) as exc:
        said = f"failed: {str(exc)[-300:]}"
    finally:
        ctx.clean()
    ctx.notes.append(f"HTTPS repetition {rep + 1}, untimed traced run of objget (default): {said}")
