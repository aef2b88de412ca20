"""Fakes for your own tests (and objget's): an in-memory store with scripted faults.

>>> import objget
>>> from objget.testing import MemoryBackend, Fault, no_wait_retry
>>> store = MemoryBackend({"k": b"x" * 1000}, faults=[Fault.reset_after(100)])
>>> config = objget.DownloadConfig(retry=no_wait_retry())
>>> with objget.Downloader(config=config) as dl:  # doctest: +SKIP
...     dl.download_object(store, "k", "out.bin")

Every `get_range` takes the next scripted fault (if any) and serves the exact bytes
otherwise, with the status and headers a real server sends.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._config import RetryPolicy
from ._exceptions import ObjectChanged, ObjectNotFound, TransportError
from ._models import ByteRange, ObjectMeta
from .engine._checkpoint import Paths
from .integrity import Checksummer, ObjectChecks

__all__ = ["Fault", "MemoryBackend", "MemoryBody", "no_wait_retry"]


def no_wait_retry(attempts: int = 5) -> RetryPolicy:
    """A retry policy that never sleeps (for fast tests)."""
    return RetryPolicy(attempts=attempts, backoff=0.0, max_backoff=0.0, deadline=None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """One scripted misbehaviour of the next ranged GET."""

    kind: str
    after: int = 0
    status: int = 0
    retry_after: float | None = None

    @classmethod
    def reset_after(cls, n: int) -> Fault:
        """Serve `n` bytes, then the connection resets."""
        return cls(kind="reset", after=n)

    @classmethod
    def short_body(cls, n: int) -> Fault:
        """Serve `n` bytes, then a clean end of body before the range is complete."""
        return cls(kind="short", after=n)

    @classmethod
    def status_error(cls, status: int, retry_after: float | None = None) -> Fault:
        """Answer with an error status (503/429 retryable, 403/404 final)."""
        return cls(kind="status", status=status, retry_after=retry_after)

    @classmethod
    def full_body(cls) -> Fault:
        """Answer 200 with the whole object, ignoring the Range (a lying proxy)."""
        return cls(kind="full")

    @classmethod
    def wrong_range(cls) -> Fault:
        """Answer 206 with a Content-Range one byte off."""
        return cls(kind="wrong_range")


class MemoryBody:
    """A response body served from memory."""

    def __init__(
        self,
        data: memoryview,
        *,
        status: int,
        content_range: str | None,
        stop_after: int | None = None,
        reset: bool = False,
        backend: MemoryBackend | None = None,
        delay: float = 0.0,
    ) -> None:
        self.status = status
        self.content_range = content_range
        self.content_length = len(data)
        headers = {"Content-Length": str(len(data))}
        if content_range is not None:
            headers["Content-Range"] = content_range
        self.headers: Mapping[str, str] = headers
        self._data = data if stop_after is None else data[:stop_after]
        self._reset = reset
        self._pos = 0
        self._backend = backend
        self._delay = delay

    def readinto(self, buf: memoryview, /) -> int:
        if self._delay:
            time.sleep(self._delay)
        n = min(len(buf), len(self._data) - self._pos)
        if n == 0 and self._reset:
            raise TransportError("connection reset by peer (scripted)")
        buf[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        if self._backend is not None:
            self._backend.bytes_served += n
        return n

    def abort(self) -> None:
        self._pos = len(self._data)

    def close(self) -> None:
        pass


class MemoryBackend:
    """An in-memory object store implementing objget's `Backend` protocol.

    `read_delay` slows every read of a body (seconds), to imitate a slow link."""

    def __init__(
        self,
        objects: Mapping[str, bytes],
        *,
        faults: Iterable[Fault] = (),
        ranges: bool = True,
        checksummer: Checksummer | None = None,
        read_delay: float = 0.0,
    ) -> None:
        self._objects = dict(objects)
        self._etags = {k: self._etag(v) for k, v in self._objects.items()}
        self._faults = list(faults)
        self._lock = threading.Lock()
        self._ranges = ranges
        self._checksummer = checksummer
        self._delay = read_delay
        self.requests: list[ByteRange | None] = []
        self.bytes_served = 0

    @staticmethod
    def _etag(data: bytes) -> str:
        return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'

    def paths(self, dest: str) -> Paths:
        """The temp/checkpoint/lock paths objget uses beside `dest`."""
        return Paths.beside(dest)

    def replace(self, key: str, data: bytes) -> None:
        """Overwrite an object (its ETag changes), e.g. in the middle of a download."""
        with self._lock:
            self._objects[key] = data
            self._etags[key] = self._etag(data)

    def add_faults(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def display(self, key: str) -> str:
        return f"memory://{key}"

    def head(self, key: str, *, version_id: str | None = None) -> ObjectMeta:
        with self._lock:
            if key not in self._objects:
                raise ObjectNotFound(f"{self.display(key)} not found (HTTP 404)", status=404)
            return ObjectMeta(
                size=len(self._objects[key]), etag=self._etags[key], accept_ranges=self._ranges
            )

    def get_range(self, key: str, rng: ByteRange | None, *, meta: ObjectMeta) -> MemoryBody:
        from .backends._transport import error_for_status

        with self._lock:
            self.requests.append(rng)
            fault = self._faults.pop(0) if self._faults else None
            if key not in self._objects:
                raise ObjectNotFound(f"{self.display(key)} not found (HTTP 404)", status=404)
            data = memoryview(self._objects[key])
            if meta.etag is not None and meta.etag != self._etags[key]:
                raise ObjectChanged(f"{self.display(key)} changed (HTTP 412)", status=412)
        if fault is not None and fault.kind == "status":
            raise error_for_status(
                fault.status, source=self.display(key), retry_after=fault.retry_after
            )
        if rng is None or not self._ranges or (fault is not None and fault.kind == "full"):
            body, status, cr = data, 200, None
        else:
            body, status = data[rng.start : rng.stop], 206
            cr = f"bytes {rng.start}-{rng.stop - 1}/{len(data)}"
            if fault is not None and fault.kind == "wrong_range":
                cr = f"bytes {rng.start + 1}-{rng.stop}/{len(data)}"
        if fault is not None and fault.kind in ("reset", "short"):
            return MemoryBody(
                body,
                status=status,
                content_range=cr,
                stop_after=fault.after,
                reset=fault.kind == "reset",
                backend=self,
                delay=self._delay,
            )
        return MemoryBody(body, status=status, content_range=cr, backend=self, delay=self._delay)

    def object_checks(self, meta: ObjectMeta) -> ObjectChecks:
        """The checksummer given to the constructor, if any, as the object's CRC."""
        return ObjectChecks(checksummer=self._checksummer)

    def close(self) -> None:
        pass
