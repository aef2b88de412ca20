"""Shared pieces for tests that talk OSS: an `oss` fixture (the OSS-protocol server in front of
the session's SeaweedFS, one per test module), the test identities, oss2 buckets, and the CLI
as a subprocess with OSS credentials in its environment.

The `conftest.py` of a tier imports the two fixtures (`from .._servers.oss_fixture import oss,
oss_faults`); `oss_faults` is autouse there and removes fault hooks and corruptions after every
test that used `oss`. objget itself is imported only when a test asks for `oss`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .seaweed import SeaweedFS

if TYPE_CHECKING:
    from ._oss_handler import LogEntry
    from .oss_server import OssServer

REPO = Path(__file__).resolve().parents[2]
AK, SK = "LTAI5tObjgetTestKey", "objgetOssSecret0123456789"
STS_AK, STS_SK, TOKEN = "STS.NUobjgetTemp", "stsSecret987654", "CAIS-sts/token+with=odd"
REGION = "cn-hangzhou"
MiB = 1024 * 1024

__all__ = [
    "AK",
    "REGION",
    "SK",
    "STS_AK",
    "STS_SK",
    "TOKEN",
    "MiB",
    "cli_env",
    "covered",
    "gets",
    "make_bucket",
    "no_leftovers",
    "oss",
    "oss_faults",
    "run_cli",
    "span_of",
]


@pytest.fixture(scope="module")
def oss(seaweed: SeaweedFS) -> Iterator[OssServer]:
    """The OSS-protocol server, knowing the long-term key (AK, SK) and the STS key
    (STS_AK, STS_SK, TOKEN), V4 region REGION."""
    from .oss_server import OssServer

    with OssServer(
        seaweed.s3_url, keys={AK: SK}, sts={STS_AK: (STS_SK, TOKEN)}, region=REGION
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def oss_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used `oss`: no fault hook, no corrupted bytes left behind."""
    yield
    if "oss" in request.fixturenames:
        server: OssServer = request.getfixturevalue("oss")
        server.clear_faults()


def make_bucket(oss: OssServer, name: str, auth: str = "v4", **kw: Any) -> Any:
    """An `oss2.Bucket` on the test server signed with `auth`: v1, v4, sts (V1), sts-v4,
    or wrong-v1 / wrong-v4 (the right key id with a wrong secret)."""
    import oss2

    auths = {
        "v1": lambda: oss2.Auth(AK, SK),
        "v4": lambda: oss2.AuthV4(AK, SK),
        "sts": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN),
        "sts-v4": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN, auth_version=oss2.AUTH_VERSION_4),
        "wrong-v1": lambda: oss2.Auth(AK, "wrong" + SK),
        "wrong-v4": lambda: oss2.AuthV4(AK, "wrong" + SK),
    }
    kw.setdefault("connect_timeout", 30)
    return oss2.Bucket(auths[auth](), oss.endpoint, name, region=REGION, **kw)


def cli_env(oss: OssServer, auth: str = "v4", **extra: str) -> dict[str, str]:
    """A clean environment for `objget oss://...`: endpoint, region and the credentials of
    `auth` (v1 and v4: the long-term key; sts: the temporary key and its token), nothing from
    the real user's OSS, ossutil or Alibaba Cloud configuration."""
    drop = ("OSS_", "ALIBABA_CLOUD_", "ALICLOUD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        OSS_ENDPOINT=oss.endpoint,
        OSS_REGION=REGION,
        PYTHONPATH=str(REPO / "src"),
        ALIBABA_CLOUD_CREDENTIALS_FILE=os.devnull,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
        OSSUTIL_CONFIG_FILE=os.devnull,
    )
    if auth == "sts":
        env.update(OSS_ACCESS_KEY_ID=STS_AK, OSS_ACCESS_KEY_SECRET=STS_SK, OSS_SESSION_TOKEN=TOKEN)
    else:
        env.update(OSS_ACCESS_KEY_ID=AK, OSS_ACCESS_KEY_SECRET=SK)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python -m objget ARGS` to completion, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "objget", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- reading the server's log ---------------------------------------------------------------------


def gets(oss: OssServer, bucket: str, key: str, since: int = 0) -> list[LogEntry]:
    """The finished GETs of `bucket/key` in the server's log, from entry `since` on."""
    return [
        e
        for e in oss.log[since:]
        if e.method == "GET" and e.request and (e.request.bucket, e.request.key) == (bucket, key)
    ]


def span_of(entry: LogEntry) -> tuple[int, int]:
    """The half-open byte span a logged ranged GET asked for."""
    assert entry.range is not None
    first, _, last = entry.range.removeprefix("bytes=").partition("-")
    return int(first), int(last) + 1


def covered(entries: list[LogEntry]) -> list[tuple[int, int]]:
    """The merged spans of object bytes the server actually sent for these GETs."""
    out: list[tuple[int, int]] = []
    for start, stop in sorted((span_of(e)[0], span_of(e)[0] + e.body_bytes) for e in entries):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        elif stop > start:
            out.append((start, stop))
    return out


def no_leftovers(dest: Path) -> None:
    """No temp data, checkpoint or lock of objget's beside `dest`."""
    assert not [p.name for p in dest.parent.glob(dest.name + ".objget-*")]
