"""The faults tier: capability probes, trial counts (`--long`), shared servers, the summary.

- Every capability this tier needs (root, tc, iptables, loop devices, strace, fiu-run, nginx,
  unshare, mount) is probed once per session; a missing one FAILS every test here.
- `trials(ci, long)`: the count for this run. `--long` (with `pytest tests/faults --long`) or
  `OBJGET_FAULTS_LONG=1` raises every count.
- `summary`: the per-class records; the table is printed at the end of the run and written to
  `tests/faults/last-summary.md` (not committed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .._servers.nginx import Nginx
from .._servers.util import write_random
from ._caps import probe_all
from ._summary import Summary

HERE = Path(__file__).resolve().parent
SUMMARY_FILE = HERE / "last-summary.md"
_KEY = pytest.StashKey[Summary]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="faults tier: many more trials per fault class (minutes more)",
    )


def _summary_of(config: pytest.Config) -> Summary:
    if _KEY not in config.stash:
        config.stash[_KEY] = Summary()
    return config.stash[_KEY]


def is_long(config: pytest.Config) -> bool:
    try:
        flag = bool(config.getoption("--long"))
    except ValueError:
        flag = False
    return flag or os.environ.get("OBJGET_FAULTS_LONG", "") not in ("", "0")


@pytest.fixture(scope="session")
def summary(request: pytest.FixtureRequest) -> Summary:
    return _summary_of(request.config)


@pytest.fixture(scope="session")
def trials(request: pytest.FixtureRequest) -> Callable[[int, int], int]:
    long = is_long(request.config)

    def count(ci: int, long_count: int) -> int:
        return long_count if long else ci

    return count


@pytest.fixture(scope="session", autouse=True)
def capabilities() -> None:
    problems = probe_all()
    if problems:
        pytest.fail(
            "the faults tier needs capabilities this machine lacks:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


ObjectMaker = Callable[[str, int], Path]


@pytest.fixture(scope="session")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults-site")


@pytest.fixture(scope="session")
def make_object(site_root: Path) -> ObjectMaker:
    """`make_object(name, size)`: a reproducible random file in the served root (made once)."""

    def make(name: str, size: int) -> Path:
        path = site_root / name
        if not path.exists() or path.stat().st_size != size:
            write_random(path, size, seed=sum(name.encode()) + size)
        return path

    return make


@pytest.fixture(scope="session")
def web(site_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """nginx on 127.0.0.1 serving `site_root` (access log at `web.access_log`)."""
    with Nginx(site_root, tmp_path_factory.mktemp("faults-nginx")) as server:
        yield server


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if _KEY not in config.stash or config.stash[_KEY].empty():
        return
    table = config.stash[_KEY].table()
    terminalreporter.section("objget fault-injection summary")
    terminalreporter.write_line(table)
    try:
        SUMMARY_FILE.write_text(table + "\n")
        terminalreporter.write_line(f"(also written to {SUMMARY_FILE})")
    except OSError as exc:
        terminalreporter.write_line(f"(could not write {SUMMARY_FILE}: {exc})")
