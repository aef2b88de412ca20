"""The batch tests' dataset: 1,999 objects under `b2k/` in SeaweedFS (plus one hostile key a
proxy adds to the listing), built once per SeaweedFS and shared by the batch and Ray tests.

Mostly tiny objects (0 B - 4 KiB) in nested directories, 40 of 64 KiB - 1 MiB, 8 of
2 - 6 MiB and one of 64 MiB (~120 MiB in all); some names have spaces, `+` and unicode.
"""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "b2k/"
BAD_KEY = PREFIX + "../evil.txt"  # SeaweedFS refuses to store it; the proxy lists it
BIG_KEY = PREFIX + "big/model 64M.bin"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    prefix: str
    sha: dict[str, str]  # key -> sha256 hex
    size: dict[str, int]

    def rel(self, key: str) -> str:
        return key[len(self.prefix) :]

    def check(self, root: Path) -> None:
        """Every object is at its path under `root` with the right bytes."""
        for key, digest in self.sha.items():
            path = root / self.rel(key)
            assert path.is_file(), f"missing {path}"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"wrong {path}"


_built: dict[str, Dataset] = {}


def _keys(rng: random.Random) -> dict[str, int]:
    keys: dict[str, int] = {}
    for i in range(1950):
        d = f"d{i % 8}/sub{i % 5}"
        name = f"ü ñ+{i:04d}.txt" if i % 50 == 0 else f"f{i:04d}.bin"
        keys[f"{PREFIX}{d}/{name}"] = 0 if i % 97 == 0 else rng.randrange(1, 4097)
    for i in range(40):
        keys[f"{PREFIX}mid/m{i:02d} x.bin"] = rng.randrange(64 * 1024, MiB + 1)
    for i in range(8):
        keys[f"{PREFIX}large/l{i}.bin"] = rng.randrange(2 * MiB, 6 * MiB + 1)
    keys[BIG_KEY] = 64 * MiB
    return keys


def build(server: Any, bucket: str = "test") -> Dataset:
    """Upload the dataset once per server (memoised by its URL)."""
    if server.s3_url in _built:
        return _built[server.s3_url]
    rng = random.Random(2000)
    sizes = _keys(rng)
    assert len(sizes) == 1999
    sha: dict[str, str] = {}

    def put(item: tuple[str, int]) -> None:
        key, size = item
        data = random.Random(key).randbytes(size)
        sha[key] = hashlib.sha256(data).hexdigest()
        server.put(bucket, key, data)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, sorted(sizes.items(), key=lambda kv: -kv[1])))
    ds = Dataset(prefix=PREFIX, sha=sha, size=sizes)
    _built[server.s3_url] = ds
    return ds
