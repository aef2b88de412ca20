"""Servers for the harness: the shared test fixtures in tests/_servers (started on free ports,
stopped by PID)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from bench.model import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def seaweed(workdir: Path) -> Any:
    """An unstarted SeaweedFS (tests/_servers/seaweed.py), anonymous S3 access."""
    from tests._servers.seaweed import SeaweedFS

    return SeaweedFS(workdir)


def nginx(root: Path, workdir: Path, *, extra: str = "", tls: bool = False) -> Any:
    """An unstarted nginx serving `root` (tests/_servers/nginx.py); `extra` goes in `location /`."""
    from tests._servers.nginx import Nginx

    return Nginx(root, workdir, extra=extra, tls=tls)


def oss_server_available() -> bool:
    return importlib.util.find_spec("tests._servers.oss_server") is not None
