"""Run-wide state (servers, objects, directories) and the one function that runs one tool once."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import pages
from bench.execute import empty_dir, run_command, verify_file
from bench.model import MiB, RunRecord, Target, Tool, short_size


@dataclass(frozen=True, kw_only=True)
class SourceObject:
    key: str
    size: int
    sha256: str
    path: Path


@dataclass(kw_only=True)
class Context:
    workdir: Path  # RUN: everything temporary lives here
    env: dict[str, str]
    avail: dict[str, bool]
    tool_filter: list[str]
    seaweed: Any = None
    bucket: str = "bench"
    oss_endpoint: str | None = None  # OSS-protocol server, or SeaweedFS's S3 port as fallback
    server_pids: dict[str, list[int]] = field(default_factory=dict)
    objects: dict[int, SourceObject] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # tool label -> why not run
    commands: dict[str, dict[str, str]] = field(default_factory=dict)  # scenario -> label -> cmd
    notes: list[str] = field(default_factory=list)
    warm_pages: bool = False  # --pages warm: populate and free memory before each timed run

    @property
    def src(self) -> Path:
        return self.workdir / "src"

    @property
    def dst(self) -> Path:
        return self.workdir / "dst"

    @property
    def store(self) -> Path:
        return self.workdir / "store"

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def wanted(self, tool: Tool) -> bool:
        """Filter by --tools (substring of the id) and by what is installed; curl always runs."""
        picked = any(f in tool.id for f in self.tool_filter)
        if self.tool_filter and tool.family != "reference" and not picked:
            return False
        if not self.avail.get(tool.needs, False):
            self.skipped[tool.label] = f"{tool.needs} not available"
            return False
        return True

    def source(self, size: int) -> SourceObject:
        """A random object of `size` bytes: a file under src/ (nginx's root) and in SeaweedFS."""
        if size in self.objects:
            return self.objects[size]
        self.src.mkdir(parents=True, exist_ok=True)
        key = f"obj-{short_size(size)}"
        path = self.src / key
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 16 * MiB))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        obj = SourceObject(key=key, size=size, sha256=h.hexdigest(), path=path)
        if self.seaweed is not None:
            self.seaweed.put(self.bucket, key, path)
            # one untimed read so every tool finds the object hot in the server's cache
            subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null",
                            f"{self.seaweed.s3_url}/{self.bucket}/{key}"],
                           check=True, timeout=self.timeout(size), env=self.env)  # fmt: skip
        self.objects[size] = obj
        return obj

    def seaweed_url(self, obj: SourceObject) -> str:
        return f"{self.seaweed.s3_url}/{self.bucket}/{obj.key}"

    def target(self, obj: SourceObject, url: str, **kw: Any) -> Target:
        """Target for `obj` at `url` (SeaweedFS: seaweed_url(obj); nginx: f"{ng.url}/{key}")."""
        s3 = self.seaweed.s3_url if self.seaweed is not None else None
        base: dict[str, Any] = {
            "http_url": url, "bucket": self.bucket, "key": obj.key, "size": obj.size,
            "sha256": obj.sha256, "dest": self.dst / f"{obj.key}.out", "s3_endpoint": s3,
            "source_path": obj.path,
            "oss_endpoint": self.oss_endpoint, "store_dir": self.store,
        }  # fmt: skip
        base.update(kw)
        return Target(**base)

    def timeout(self, size: int) -> float:
        return 120 + size / (2 * MiB)

    def clean(self) -> None:
        empty_dir(self.dst)
        empty_dir(self.store)


def run_one(
    ctx: Context,
    *,
    scenario: str,
    group: str,
    tool: Tool,
    target: Target,
    rep: int,
    verify: Callable[[Target], bool] | None = None,
) -> RunRecord:
    """One timed run: clean dest, run, measure, verify sha256, clean again (+ sync, untimed)."""
    ctx.clean()
    cmd = tool.build(target)
    ctx.commands.setdefault(scenario, {}).setdefault(tool.label, " ".join(cmd))
    if ctx.warm_pages:
        pages.warm(target.size)
    m = run_command(
        cmd,
        env={**ctx.env, **tool.env},
        timeout=ctx.timeout(target.size),
        workdir=ctx.workdir,
        server_pids=ctx.server_pids.get(tool.server, []),
        timed_by_tool=tool.kind == "py",
    )
    verified: bool | None = None
    if tool.verify:
        check = verify or (lambda t: verify_file(t.dest, t.size, t.sha256, t.source_path))
        verified = m.ok and check(target)
    ok = m.ok and verified is not False
    error = m.error or ("" if ok else "sha256 mismatch or file missing")
    ctx.clean()
    rec = RunRecord(
        scenario=scenario, group=group, tool=tool.id, label=tool.label, family=tool.family,
        rep=rep, size=target.size, ok=ok, verified=verified, seconds=m.seconds if ok else None,
        wall=m.wall, rss_kib=m.rss_kib, client_cpu=m.client_cpu, server_cpu=m.server_cpu,
        other_cpu=m.other_cpu,
        extra={"count": target.extra["count"]} if "count" in target.extra else {},
        error=error,
    )  # fmt: skip
    shown = f"{m.seconds:.3f}s" if ok and m.seconds is not None else f"FAILED {error}"
    ctx.log(f"  [{scenario} {group} rep {rep + 1}] {tool.label}: {shown}")
    return rec


def rotated(items: list[Any], rep: int, reps: int) -> list[Any]:
    """Order of one repetition: rotated so every tool runs at a different position each time."""
    if not items:
        return items
    step = max(1, len(items) // max(1, reps))
    k = (rep * step) % len(items)
    return items[k:] + items[:k]
