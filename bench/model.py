"""Values shared by the harness: sizes, what a tool downloads (Target), tools, one run's record."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
PYTHON = sys.executable
PEER_RUNNER = BENCH_DIR / "peer_runner.py"

_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB}


def parse_size(text: str) -> int:
    """'8M' -> 8 MiB, '1G' -> 1 GiB, '64K', or a plain byte count."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"bad size {text!r} (use e.g. 8M, 256M, 1G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def human_size(n: int) -> str:
    for unit, mult in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} B"


def short_size(n: int) -> str:
    return human_size(n).replace(" GiB", "G").replace(" MiB", "M").replace(" KiB", "K")


@dataclass(frozen=True, kw_only=True)
class Target:
    """Everything a tool needs to fetch one object (or, for `many`, a list of them)."""

    http_url: str  # plain HTTP(S) URL of the object
    bucket: str
    key: str
    size: int
    sha256: str
    dest: Path  # file to create (a directory for the `many` scenario)
    source_path: Path | None = None  # the uploaded bytes, to compare the download with
    s3_endpoint: str | None = None
    oss_endpoint: str | None = None
    ca_path: str | None = None
    store_dir: Path | None = None  # checkpoint store for oss2 / objget.resumable_download
    list_file: Path | None = None  # `many`: file listing the objects (format per tool)
    extra: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[Target], list[str]]


@dataclass(frozen=True, kw_only=True)
class Tool:
    """One row of a table: how to run a tool against a Target.

    kind "cli": median s is the whole process; kind "py": the peer runner prints the timed part.
    """

    id: str
    label: str
    kind: str
    build: Builder
    family: str = "peer"  # "objget" | "peer" | "limit" | "reference"
    verify: bool = True  # False for /dev/null rows
    server: str = "seaweed"  # whose CPU to count: "seaweed" | "nginx" | "none"
    needs: str = ""  # availability key checked by bench.env (e.g. "rclone", "objget-cli")
    env: dict[str, str] = field(default_factory=dict)
    # slow peers run in the first `max_reps` repetitions only; the paired ratios fill the
    # others with their median (None: every repetition)
    max_reps: int | None = None


@dataclass(kw_only=True)
class RunRecord:
    scenario: str
    group: str  # table name inside the scenario, e.g. "256 MiB"
    tool: str
    label: str
    family: str
    rep: int
    size: int
    ok: bool
    verified: bool | None  # None = not checked (/dev/null rows)
    seconds: float | None  # timed part (see Tool)
    wall: float | None  # whole process
    rss_kib: int | None
    client_cpu: float | None  # user+sys of the process tree
    server_cpu: float | None
    other_cpu: float | None = None  # CPU used by anything else on the machine during the run
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
