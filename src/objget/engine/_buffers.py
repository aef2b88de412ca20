"""The read buffers of one download's streams: anonymous mappings that share one budget.

Each worker reads a response into one buffer, `pwrite`s it and updates the CRC on it. How much
it reads at once is its share of the download's budget (`_config.stream_share`: the streams
together read into at most twice `buffer_size`, 1 MiB each for up to two streams, 512 KiB for
four, 256 KiB for eight or more), looked up before every read, so the peak
memory of a download stays flat as the stream controller adds streams. It grew with them: each
stream held a whole 1 MiB buffer (and a connection buffer), a 1 GiB download climbed to four or
five streams where a 256 MiB one ended at one or two, and the CLI's peak RSS went from 18 to 23
MiB between the two sizes.

Why a mapping (`mmap(-1, n)`) and not a `bytearray`:

- a `bytearray(n)` is zero-filled when it is made, so all of it is resident at once; a fresh
  mapping's pages are resident only once a read has written them, so a buffer costs what its
  share touches, not its size;
- a share that shrinks hands its pages back at once (`MADV_DONTNEED` on the tail, done by the
  owner between two reads, when no read uses them), and a worker that ends unmaps its buffer.
  A `bytearray` would come from malloc: past glibc's dynamic mmap threshold (it rises to the
  largest block freed, up to 32 MiB), a 1 MiB block comes from the thread's arena, which keeps
  it after `free` and can give back only its top; so a long-lived process (a `Downloader`
  reused, a batch) could keep every stream's buffer it ever had.

Cost: one `mmap`/`munmap` per worker, one `madvise` each time its share shrinks, and a
function call per read (under a microsecond against a read of 256 KiB or more).
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable

__all__ = ["StreamBuffer"]

_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # (not on every platform: then kept)


class StreamBuffer:
    """One worker's buffer: `size` bytes of address space, of which a read uses the share
    `share()` returns at that moment (a multiple of the page size, at most `size`)."""

    __slots__ = ("_high", "_map", "_share", "view")

    def __init__(self, size: int, share: Callable[[], int]) -> None:
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)  # (shared: shmem, kept)
        self.view = memoryview(self._map)
        self._share = share
        self._high = 0  # the buffer's first `_high` bytes may be resident

    def limit(self) -> int:
        """The most the next read may take; gives back the pages beyond it first, when an
        earlier read wrote there (call it only between reads: no read may be using them)."""
        n = min(self._share(), len(self.view))
        high = self._high
        if n < high:
            if _DONTNEED is not None:
                self._map.madvise(_DONTNEED, n, high - n)
            self._high = n
        elif n > high:
            self._high = n
        return n

    def close(self) -> None:
        """Unmap the buffer (at once, or when the last view of it goes, if one is left)."""
        with contextlib.suppress(BufferError):  # a view still held: unmapped when it goes
            self.view.release()
            self._map.close()
