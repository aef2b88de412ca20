"""Shared fixtures: real servers (SeaweedFS, nginx) and tier markers.

Nothing here imports objget, so a half-edited package never breaks collection of other tiers.

- `seaweed`: session-wide SeaweedFS, anonymous access, bucket "test" created.
- `seaweed_auth`: session-wide SeaweedFS checking SigV4; identities `AUTH_IDENTITIES`
  (the first may do everything, the second is valid but has no permissions); bucket "test".
- `nginx_factory(root, *, extra="", tls=False)`: a started `Nginx`, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ._servers.nginx import Nginx
from ._servers.seaweed import SeaweedFS

TESTS = Path(__file__).resolve().parent
AUTH_IDENTITIES = [("objgetAK", "objgetSecret0123456789"), ("otherAK", "otherSecret")]
BUCKET = "test"

# directory under tests/ -> markers its tests get
_TIER_MARKERS = {
    "integration": ("integration",),
    "faults": ("integration", "faults"),
    "compat": ("integration",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = item.path.resolve().relative_to(TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        for name in _TIER_MARKERS.get(tier, ()):
            item.add_marker(name)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with SeaweedFS(tmp_path_factory.mktemp("seaweed")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(scope="session")
def seaweed_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with SeaweedFS(tmp_path_factory.mktemp("seaweed-auth"), identities=AUTH_IDENTITIES) as server:
        server.create_bucket(BUCKET)
        yield server


NginxFactory = Callable[..., Nginx]


@pytest.fixture
def nginx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxFactory]:
    started: list[Nginx] = []

    def make(root: Path, *, extra: str = "", tls: bool = False) -> Nginx:
        server = Nginx(root, tmp_path_factory.mktemp("nginx"), extra=extra, tls=tls)
        server.start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()
