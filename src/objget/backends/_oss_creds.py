"""Where OSS credentials come from, and how they stay valid through a long download.

A credential source answers `current()` for every request it signs: a dict read while the
credentials are fresh, no lock and no I/O. Two kinds:

- `StaticCredentials`: a key pair (and STS token) given once: `OSS_ACCESS_KEY_ID` /
  `OSS_ACCESS_KEY_SECRET` / `OSS_SESSION_TOKEN`, an ossutil profile, an `oss2.Bucket`'s keys.
  They cannot be renewed: an expired token is a final `AccessDenied`.
- `ChainCredentials`: the Alibaba Cloud default credential chain (`alibabacloud-credentials`:
  its environment variables, OIDC, the `aliyun` CLI's profile, `~/.alibabacloud/credentials`,
  the ECS RAM role, a credentials URI). That library caches what it fetched and renews
  temporary credentials itself well before they expire (15 minutes ahead); objget asks it
  again at most every `check_every` seconds (one thread, under a lock; the others keep
  signing with the credentials they have), so renewed credentials are used from then on.

When the store still answers that the credentials expired (`SecurityTokenExpired`,
`InvalidAccessKeyId` for a temporary key: a clock that is off, a token revoked early),
`renew(used)` asks the source once, at once: True when the next signature uses other
credentials, and the request is then retried under the download's one retry policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .._exceptions import DownloadError
from .._log import log
from ._oss_auth import OssCredentials
from ._redact import RedactFilter, redact_text

__all__ = [
    "CHAIN_HINT",
    "ChainCredentials",
    "CredentialSource",
    "StaticCredentials",
    "chain_credentials",
    "key_of",
]


CHAIN_HINT = (
    "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, fix the chain's configuration, or pass "
    "--no-sign-request (anonymous=True) for a public bucket"
)
CHECK_EVERY = 60.0  # seconds between two questions to the chain while all goes well
_LOCK_WAIT = 60.0  # the longest a renewal waits for another one in progress


def key_of(creds: OssCredentials) -> tuple[str, str | None]:
    """What tells two credentials apart in a signed request: the key id and the token."""
    return creds.access_key_id, creds.security_token


class CredentialSource(Protocol):
    """The credentials to sign the next request with, and a way to renew them."""

    def current(self) -> OssCredentials: ...

    def renew(self, used: tuple[str, str | None]) -> bool:
        """The store refused the credentials `used` (`key_of`) as expired: True when
        `current()` now gives other ones."""
        ...


class StaticCredentials:
    """Credentials given once; nothing to renew them from."""

    def __init__(self, credentials: OssCredentials) -> None:
        self._creds = credentials

    def __repr__(self) -> str:
        return f"StaticCredentials({self._creds!r})"

    def current(self) -> OssCredentials:
        return self._creds

    def renew(self, used: tuple[str, str | None]) -> bool:
        return False


class ChainCredentials:
    """Credentials from an `alibabacloud_credentials.client.Client` (or anything with its
    `get_credential()`), asked again every `check_every` seconds and when the store says they
    expired. The first answer is fetched here: a chain that fails is an error naming why."""

    def __init__(
        self,
        client: Any,
        *,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._creds = self._fetch()
        self._next = clock() + check_every

    def __repr__(self) -> str:
        return f"ChainCredentials({self._creds!r})"

    def _fetch(self) -> OssCredentials:
        try:
            cred = self._client.get_credential()
        except Exception as exc:  # not anonymous in silence: the user meant to sign
            cause = redact_text(f"{exc.__class__.__name__}: {str(exc)[:300]}")
            raise DownloadError(
                f"the Alibaba Cloud credential chain failed: {cause}; {CHAIN_HINT}"
            ) from exc
        kind = getattr(cred, "provider_name", None) or getattr(cred, "type", None) or "default"
        if not cred.access_key_id or not cred.access_key_secret:
            raise DownloadError(
                f"the Alibaba Cloud credential chain gave no access key id or secret "
                f"(from {kind}); {CHAIN_HINT}"
            )
        return OssCredentials(
            cred.access_key_id,
            cred.access_key_secret,
            cred.security_token or None,
            source=f"Alibaba Cloud credential chain ({kind})",
        )

    def current(self) -> OssCredentials:
        creds = self._creds
        if self._clock() < self._next or not self._lock.acquire(blocking=False):
            return creds  # fresh, or another thread is asking the chain right now
        try:
            if self._clock() >= self._next:
                self._ask_chain()
            return self._creds
        finally:
            self._lock.release()

    def _ask_chain(self) -> None:
        """Under the lock: the chain's answer now; on failure the credentials in hand stay
        (they may still be valid: the store will say when not) and the chain is asked again
        at the next check."""
        try:
            creds = self._fetch()
        except DownloadError as exc:
            log.warning("keeping the OSS credentials in hand: %s", exc)
        else:
            if key_of(creds) != key_of(self._creds):
                log.info("OSS credentials renewed: now %s", creds.describe())
            self._creds = creds
        self._next = self._clock() + self._check_every

    def renew(self, used: tuple[str, str | None]) -> bool:
        if not self._lock.acquire(timeout=_LOCK_WAIT):
            return key_of(self._creds) != used
        try:
            if key_of(self._creds) == used:  # nobody renewed them since: ask the chain now
                self._creds = self._fetch()  # a failing chain is the final error
                self._next = self._clock() + self._check_every
                if key_of(self._creds) != used:
                    log.info("OSS credentials renewed: now %s", self._creds.describe())
            return key_of(self._creds) != used
        finally:
            self._lock.release()


def chain_credentials() -> ChainCredentials | None:
    """The Alibaba Cloud default credential chain, or None when `alibabacloud-credentials`
    is not installed (it is in the `oss` extra)."""
    try:
        from alibabacloud_credentials.client import Client
    except ImportError:
        return None
    import logging  # loaded already: the credentials library logs through it

    chain_log = logging.getLogger("credentials")  # the library's own logger and handler
    if not any(isinstance(f, RedactFilter) for f in chain_log.filters):
        chain_log.addFilter(RedactFilter())
    return ChainCredentials(Client())
