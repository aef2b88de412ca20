"""Many small objects: N x 64 KiB from SeaweedFS, every file sha256-checked after each run
(each run into a directory of its own)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import tools
from bench.context import Context, rotated, run_one
from bench.execute import sha256_file
from bench.model import PEER_RUNNER, PYTHON, Builder, KiB, RunRecord, Target, Tool


def _curl_parallel(t: Target) -> list[str]:
    assert t.list_file is not None
    return ["curl", "-sS", "--fail", "--parallel", "--parallel-max", "16",
            "--output-dir", str(t.dest), "-K", str(t.list_file.with_suffix(".curl"))]  # fmt: skip


def _aria2c_list(t: Target) -> list[str]:
    assert t.list_file is not None
    return ["aria2c", "-i", str(t.list_file.with_suffix(".aria2")), "-j16", "-x1", "-s1",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--console-log-level=warn",
            "--summary-interval=0", "--download-result=hide", "--dir", str(t.dest)]  # fmt: skip


def _boto3(t: Target, threads: int) -> list[str]:
    assert t.list_file is not None and t.s3_endpoint
    return [PYTHON, str(PEER_RUNNER), "boto3-many", "--endpoint", t.s3_endpoint, "--bucket",
            t.bucket, "--keys", str(t.list_file), "--dest", str(t.dest),
            "--concurrency", str(threads)]  # fmt: skip


def _objget_recursive(jobs: int) -> Builder:
    def build(t: Target) -> list[str]:
        assert t.s3_endpoint
        cmd = [
            *tools.OBJGET_CLI,
            "--recursive",
            f"s3://{t.bucket}/{t.key}/",
            f"{t.dest}/",
            "-q",
            "--endpoint-url",
            t.s3_endpoint,
            "--no-sign-request",
            "--addressing-style",
            "path",
        ]
        return cmd + (["-j", str(jobs)] if jobs else [])  # fmt: skip

    return build


def _manifest(t: Target) -> list[str]:
    return [*tools.OBJGET_CLI, "--manifest", str(t.list_file.with_suffix(".jsonl")), f"{t.dest}/",
            "-q"]  # fmt: skip


def _baseline_tools() -> list[Tool]:
    """With `--baseline DIR`: the objget rows again, run from that checkout's src/."""
    if not tools.BASELINE_SRC:
        return []
    env = {"PYTHONPATH": tools.BASELINE_SRC}
    return [
        Tool(id="objget-recursive-base", label="objget --recursive (default), --baseline src",
             kind="cli", family="objget", needs="objget-batch", build=_objget_recursive(0),
             env=env),
        Tool(id="objget-manifest-base", label="objget --manifest (HTTP URLs), --baseline src",
             kind="cli", family="objget", needs="objget-batch", build=_manifest, env=env),
    ]  # fmt: skip


def many_tools() -> list[Tool]:
    return [
        *_baseline_tools(),
        Tool(id="curl", label="curl --parallel --parallel-max 16 -K list", kind="cli",
             family="reference", build=_curl_parallel),
        Tool(id="aria2c-j16", label="aria2c -i list -j16", kind="cli", build=_aria2c_list),
        # (a one-thread boto3 loop ran at 84 obj/s, 24 s a run; the 16-thread row stands for it)
        # boto3 runs at ~85 obj/s (25 s a run, 6x the next slowest): one run gives its figure
        Tool(id="boto3-t16", label="boto3 download_file, 16 threads", kind="py",
             build=lambda t: _boto3(t, 16), max_reps=1),
        Tool(id="rclone", label="rclone copy (default --transfers 4)", kind="cli",
             needs="rclone", build=lambda t: tools.rclone(t, [], verb="copy",
                                                          src=f":s3:{t.bucket}/{t.key}")),
        Tool(id="rclone-16", label="rclone copy --transfers 16", kind="cli", needs="rclone",
             build=lambda t: tools.rclone(t, ["--transfers", "16"], verb="copy",
                                          src=f":s3:{t.bucket}/{t.key}")),
        Tool(id="objget-recursive", label="objget --recursive s3://bucket/many/ (default)",
             kind="cli", family="objget", needs="objget-batch", build=_objget_recursive(0)),
        Tool(id="objget-recursive-j16", label="objget --recursive -j 16", kind="cli",
             family="objget", needs="objget-batch", build=_objget_recursive(16)),
        Tool(id="objget-manifest", label="objget --manifest list.jsonl (HTTP URLs)", kind="cli",
             family="objget", needs="objget-batch", build=_manifest),
    ]  # fmt: skip


def _upload(ctx: Context, count: int, size: int) -> dict[str, str]:
    """Upload `count` random objects under many/; returns file name -> sha256."""
    names = [f"o-{i:05d}" for i in range(count)]
    blobs = {n: os.urandom(size) for n in names}

    def put(name: str) -> None:
        ctx.seaweed.put(ctx.bucket, f"many/{name}", blobs[name])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for fut in [pool.submit(put, n) for n in names]:
            fut.result(timeout=300)
    return {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()}


def _write_lists(ctx: Context, expected: dict[str, str]) -> Path:
    base = ctx.workdir / "many-list"
    s3 = ctx.seaweed.s3_url
    names = sorted(expected)
    base.with_suffix(".txt").write_text("".join(f"many/{n}\n" for n in names))
    base.with_suffix(".aria2").write_text(
        "".join(f"{s3}/{ctx.bucket}/many/{n}\n  out={n}\n" for n in names))  # fmt: skip
    base.with_suffix(".jsonl").write_text(
        "".join(
            json.dumps({"source": f"{s3}/{ctx.bucket}/many/{n}", "dest": n}) + "\n" for n in names
        )
    )
    base.with_suffix(".curl").write_text(
        "".join(f'url = "{s3}/{ctx.bucket}/many/{n}"\noutput = "{n}"\n' for n in names)
    )
    return base.with_suffix(".txt")


def many(ctx: Context, count: int, reps: int, obj_size: int = 64 * KiB) -> list[RunRecord]:
    ctx.log(f"uploading {count} x {obj_size // KiB} KiB objects")
    expected = _upload(ctx, count, obj_size)
    list_file = _write_lists(ctx, expected)
    cand = [t for t in many_tools() if ctx.wanted(t)]
    target = Target(
        http_url=f"{ctx.seaweed.s3_url}/{ctx.bucket}/many/", bucket=ctx.bucket, key="many",
        size=count * obj_size, sha256="", dest=ctx.dst, s3_endpoint=ctx.seaweed.s3_url,
        list_file=list_file, extra={"count": count},
    )  # fmt: skip

    def verify(t: Target) -> bool:
        """Every object, found by name anywhere under DST (layouts differ), has the right bytes."""
        found = {p.name: p for p in t.dest.rglob("o-*") if p.is_file()}
        for name, digest in expected.items():
            p = found.get(name)
            if p is None or sha256_file(p) != digest:
                return False
        return True

    group = f"{count} x {obj_size // KiB} KiB"
    records = []
    # Every run writes into a directory of its own, and they are all removed at the end: on
    # ext4 without a journal (this VM's root), creating files for ~30 s after thousands were
    # deleted scans past the freed inodes (2,000 creates: 0.16 s of CPU normally, 0.8-1.5 s
    # right after a delete), which would tax whichever tool runs after another.
    runs_root = ctx.dst.parent / "many-runs"
    try:
        for rep in range(reps):
            for tool in rotated(cand, rep, reps):
                if tool.max_reps is not None and rep >= tool.max_reps:
                    continue
                own = dataclasses.replace(target, dest=runs_root / f"{rep}-{tool.id}")
                own.dest.mkdir(parents=True)
                records.append(run_one(ctx, scenario="many", group=group, tool=tool,
                                       target=own, rep=rep, verify=verify))  # fmt: skip
    finally:
        shutil.rmtree(runs_root, ignore_errors=True)
    return records
