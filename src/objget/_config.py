"""DownloadConfig, Timeouts and RetryPolicy: frozen, keyword-only, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["DownloadConfig", "RetryPolicy", "Timeouts", "small_buffer", "stream_share"]

MiB = 1024 * 1024
# A stream reads up to `buffer_size` (1 MiB) at once: 1 GiB from nginx, one stream, CPU of the
# whole download (medians of 5): 64 KiB 1.10 s, 256 KiB 0.79 s, 1 MiB 0.63 s; with 2 and 4
# streams 512 KiB costs 0.07-0.08 s more than 1 MiB. The streams of one download share a budget
# of BUDGET_BUFFERS x `buffer_size` (`stream_share`), so the memory of a download stays flat as
# the stream controller adds streams, down to 256 KiB a stream (what every stream past the
# fourth read before; 32 capped streams at 64 KiB took 0.193 s of CPU for 64 MiB against
# 0.179 s at 256 KiB, medians of 16); a batch's workers read at most 256 KiB at once.
BUDGET_BUFFERS = 2
MANY_STREAMS_BUFFER = 256 * 1024
MIN_SHARE = MANY_STREAMS_BUFFER
SHARE_STEP = 64 * 1024  # a page multiple: a share is where a buffer's pages are cut


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Seconds. `read` is also the stall detector: a connection that delivers no byte for
    `read` seconds is dropped and its part resumes on a new one."""

    connect: float = 10.0
    read: float = 30.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """One policy for every retryable failure: exponential backoff with full jitter,
    `Retry-After` honoured (capped by `max_backoff`), bounded by attempts and a deadline.

    `attempts` counts consecutive failures of one part without progress; a part that made
    progress before failing starts counting again. `deadline` bounds the time one part may spend
    waiting to retry without making progress (seconds, None = no bound).
    """

    attempts: int = 8
    backoff: float = 0.5
    max_backoff: float = 30.0
    deadline: float | None = 600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff must be >= 0")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive or None")


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadConfig:
    """Options of a download. Every field has a default that suits an internet path.

    - `max_workers`: ceiling on parallel connections (`-j`); objget starts with a few and adds
      more only while the aggregate rate keeps rising.
    - `part_size`: size of one ranged GET; None sizes each request when it starts, from what
      is left and how many streams run (big requests for one stream, smaller for many).
    - `limit_rate`: bytes per second for the whole download (None = unlimited).
    - `buffer_size`: bytes one stream reads and writes at once; the streams of a download
      share twice that (1 MiB each for up to two streams, 512 KiB for four, 256 KiB for
      eight, at least 256 KiB), so memory stays flat as streams are added; each worker of a
      batch reads at most 256 KiB of it.
    - `checksum`: `"sha256:HEX"` to verify the whole file after download.
    - `restart`: ignore any checkpoint and start from zero.
    - `ca_bundle` / `verify_tls`: TLS trust (system store by default).
    - `skip_existing`: do not download when the destination already is a regular file with the
      object's size and its Last-Modified as mtime (objget sets that mtime after every
      download); the result then says `skipped`.
    - `proxy`: forward proxy URL for every request (`http://[user:password@]host:port`),
      replacing `http_proxy`/`https_proxy`/`all_proxy`; `""` = no proxy at all; None = the
      environment (docs/proxies.md). Its credentials never appear in a repr or a message.
    - `no_proxy`: hosts that bypass the proxy (curl's `--noproxy` syntax), replacing
      `NO_PROXY`; None = the environment.
    """

    max_workers: int = 32
    min_workers: int = 1
    part_size: int | None = None
    limit_rate: int | None = None
    buffer_size: int = MiB
    checksum: str | None = None
    restart: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    checkpoint_interval: float = 1.0
    checkpoint_bytes: int = 64 * MiB  # durable saves; crashes are covered by the live record
    ca_bundle: str | None = None
    verify_tls: bool = True
    user_agent: str = "objget"
    skip_existing: bool = False
    proxy: str | None = None
    no_proxy: str | None = None

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "proxy" and value:
                from .backends._proxy import parse_proxy

                value = parse_proxy(value).shown
            shown.append(f"{f.name}={value!r}")
        return f"DownloadConfig({', '.join(shown)})"

    def __post_init__(self) -> None:
        if self.max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if not 1 <= self.min_workers <= self.max_workers:
            raise ValueError("min_workers must be between 1 and max_workers")
        if self.part_size is not None and self.part_size < 64 * 1024:
            raise ValueError("part_size must be at least 64 KiB")
        if self.limit_rate is not None and self.limit_rate < 1024:
            raise ValueError("limit_rate must be at least 1024 bytes/s")
        if self.buffer_size < 16 * 1024:
            raise ValueError("buffer_size must be at least 16 KiB")
        if self.checksum is not None:
            algo, _, hexval = self.checksum.partition(":")
            if algo.lower() != "sha256" or len(hexval) != 64:
                raise ValueError("checksum must look like sha256:<64 hex digits>")
            try:
                bytes.fromhex(hexval)
            except ValueError:
                raise ValueError("checksum must look like sha256:<64 hex digits>") from None
        if self.proxy:
            from .backends._proxy import parse_proxy  # backends import this module

            parse_proxy(self.proxy)  # a ValueError that never quotes the URL


def stream_share(config: DownloadConfig, streams: int) -> int:
    """What each of `streams` running streams of one download reads at once: an even share of
    BUDGET_BUFFERS x `buffer_size`, at most `buffer_size`, at least MIN_SHARE (or
    `buffer_size` when that is smaller); below `buffer_size` always a multiple of SHARE_STEP.

    >>> cfg = DownloadConfig()
    >>> [stream_share(cfg, n) // 1024 for n in (1, 2, 3, 4, 5, 8, 16, 32)]
    [1024, 1024, 640, 512, 384, 256, 256, 256]
    """
    size = config.buffer_size
    share = BUDGET_BUFFERS * size // max(1, streams) // SHARE_STEP * SHARE_STEP
    return size if share >= size else max(share, min(size, MIN_SHARE))


def small_buffer(config: DownloadConfig) -> int:
    """What a worker of a batch reads at once; also the read size the stream controller
    expects from a stream (as with 256 KiB buffers before)."""
    return min(config.buffer_size, MANY_STREAMS_BUFFER)
