"""A fake S3 prefix for the batch fault trials, on the raw-socket server: one ListObjectsV2
page and ranged GETs (206, exact `Content-Range`, `If-Match` checked) of a fixed set of small
objects; it counts the GETs per key. And the judges of a batch destination: the wrong bytes
of the objects on disk, and the bytes the journal says are done that are not on disk.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, unquote

from ._rawserver import RawRequest, RawServer, Reply, http_reply

__all__ = [
    "BUCKET",
    "PREFIX",
    "BatchStore",
    "cli_args",
    "journal_done",
    "journal_lies",
    "leftovers",
    "objects",
    "wrong_bytes",
]

BUCKET = "crash-bucket"
PREFIX = "set/"
KiB = 1024


def objects(seed: int, count: int) -> dict[str, bytes]:
    """`count` small objects in three directories (some empty, a few over 1 MiB, which a
    batch hands to a worker one at a time), reproducible from `seed`."""
    rng = random.Random(seed)
    out: dict[str, bytes] = {}
    for i in range(count):
        size = 0 if i % 11 == 0 else rng.randrange(1, 96 * KiB)
        if i % 13 == 5:
            size = rng.randrange(1024 * KiB, 1536 * KiB)
        out[f"{PREFIX}d{i % 3}/o{i:03d}.bin"] = rng.randbytes(size)
    return out


class BatchStore:
    """The fake store; `delay` seconds before each GET answer (a slow link)."""

    def __init__(self, data: dict[str, bytes], *, delay: float = 0.0) -> None:
        self.data = data
        self.delay = delay
        self.etags = {k: hashlib.md5(v, usedforsecurity=False).hexdigest() for k, v in data.items()}
        self.gets: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.server = RawServer(self._answer)

    def __enter__(self) -> BatchStore:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def reset(self) -> None:
        with self._lock:
            self.gets.clear()

    def _listing(self) -> bytes:
        items = "".join(
            f"<Contents><Key>{quote(k, safe='/')}</Key><LastModified>2024-01-01T00:00:00.000Z"
            f'</LastModified><ETag>"{self.etags[k]}"</ETag><Size>{len(v)}</Size></Contents>'
            for k, v in sorted(self.data.items())
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Name>{BUCKET}</Name><Prefix>{PREFIX}</Prefix><KeyCount>{len(self.data)}"
            "</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>"
            f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
        ).encode()

    def _answer(self, req: RawRequest) -> Reply:
        if "list-type=2" in req.path:
            page = self._listing()
            return http_reply("200 OK", {"Content-Length": str(len(page))}, page, keep_alive=True)
        key = unquote(req.path.partition("?")[0])[len(f"/{BUCKET}/") :]
        if key not in self.data:
            return http_reply("404 Not Found", {"Content-Length": "0"}, keep_alive=True)
        body, etag = self.data[key], f'"{self.etags[key]}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Length": str(len(body))}
        if req.method == "HEAD":
            return http_reply("200 OK", headers, keep_alive=True)
        with self._lock:
            self.gets[key] += 1
        if self.delay:
            time.sleep(self.delay)
        if req.headers.get("if-match", etag) != etag:
            return http_reply("412 Precondition Failed", {"Content-Length": "0"}, keep_alive=True)
        if "range" not in req.headers:  # as S3: a whole-object GET is a 200
            return http_reply("200 OK", headers, body, keep_alive=True)
        first, _, last = req.headers["range"].removeprefix("bytes=").partition("-")
        start, stop = int(first or 0), int(last or len(body) - 1) + 1
        headers["Content-Length"] = str(stop - start)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(body)}"
        return http_reply("206 Partial Content", headers, body[start:stop], keep_alive=True)


def cli_args(store: BatchStore, dest: Path, *extra: object) -> list[object]:
    return [
        "--recursive", f"s3://{BUCKET}/{PREFIX}", f"{dest}/", "-q", "--no-sign-request",
        "--endpoint-url", store.url, "--region", "us-east-1", "--retries", "2", *extra,
    ]  # fmt: skip


def wrong_bytes(dest: Path, data: dict[str, bytes]) -> int:
    """Bytes at the objects' paths that are not the object's: 0 when every file is absent
    or exact."""
    wrong = 0
    for key, want in data.items():
        path = dest / key[len(PREFIX) :]
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file():
            wrong += max(1, len(want))
            continue
        got = path.read_bytes()
        if got != want:
            n = min(len(got), len(want))
            wrong += sum(1 for i in range(n) if got[i] != want[i]) + abs(len(got) - len(want))
    return wrong


def journal_done(dest: Path) -> set[str]:
    """The relative paths the journal on `dest` says are done (empty when there is none)."""
    path = dest / ".objget-batch.db"
    if not path.exists():
        return set()
    db = sqlite3.connect(str(path), timeout=5)
    try:
        return {row[0] for row in db.execute("SELECT dest FROM objects WHERE state='done'")}
    except sqlite3.DatabaseError:
        return set()
    finally:
        db.close()


def journal_lies(dest: Path, data: dict[str, bytes]) -> int:
    """Bytes of objects the journal says are done that are not on disk exactly."""
    lies = 0
    for rel in journal_done(dest):
        want = data[PREFIX + rel]
        path = dest / rel
        if not path.is_file() or path.is_symlink() or path.read_bytes() != want:
            lies += max(1, len(want))
    return lies


def leftovers(dest: Path) -> list[str]:
    """objget's side files under `dest`, the batch journal's included: a batch in which
    every object succeeded leaves none."""
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if ".objget-" in p.name)
