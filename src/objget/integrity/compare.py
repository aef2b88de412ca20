"""The one place checks are compared: the CRC computed on the byte path against the store's,
then every file check on the finished file (`check_all`). Any mismatch discards the temp file
(`discard()`) and raises IntegrityError; the destination is never touched. The engine's path
(`_verify.verify`) and the single-request mode (`_single`) both end here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._exceptions import IntegrityError
from .checks import no_values

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from ._protocols import Checksummer, FileCheck

__all__ = ["Verified", "check_all", "checksum_text"]


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class Verified:
    """What was checked (`names`, `size` first) and each checksum's value (`values`:
    name -> value in the form the store or the user gave it)."""

    names: tuple[str, ...]
    values: Mapping[str, str] = field(default_factory=no_values)


def check_all(
    fd: int,
    *,
    size: int,
    checksummer: Checksummer | None,
    crc: int | None,
    checks: Iterable[FileCheck],
    display: str,
    discard: Callable[[], None],
) -> Verified:
    """Compare the CRC computed on the byte path (`crc`, of all `size` bytes) with the
    checksummer's, then run every file check on `fd`; IntegrityError (after `discard()`) at
    the first mismatch."""
    names = ["size"]
    values: dict[str, str] = {}
    if checksummer is not None and size > 0:
        _compare(checksummer.name, str(checksummer.expected), str(crc), display, discard)
        names.append(checksummer.name)
        values[checksummer.name] = checksum_text(checksummer)
    digests: dict[str, bytes] = {}  # one read per algorithm (the user's and the store's SHA-256)
    for check in checks:
        from .digests import DigestCheck  # loaded with the first file check, not before

        if isinstance(check, DigestCheck):
            raw = digests.get(check.name)
            if raw is None:
                raw = digests[check.name] = check.digest(fd, size)
            actual = check.text(raw)
        else:
            actual = check.compute(fd, size)
        _compare(check.name, check.expected, actual, display, discard)
        if check.name not in values:  # e.g. the user's sha256 (hex) and the store's (base64)
            names.append(check.name)
            values[check.name] = check.expected
    return Verified(names=tuple(names), values=MappingProxyType(values))


def checksum_text(checksummer: Checksummer) -> str:
    """The checksummer's expected value as the store writes it (its `text()` when it has one,
    e.g. S3's base64; else the number, as OSS's decimal CRC-64)."""
    from ._protocols import HasText  # (and typing) where the store gave a checksum

    if isinstance(checksummer, HasText):
        return str(checksummer.text())
    return str(checksummer.expected)


def _compare(
    name: str, expected: str, actual: str, display: str, discard: Callable[[], None]
) -> None:
    if actual == expected:
        return
    discard()
    raise IntegrityError(
        f"{display}: {name} mismatch (expected {expected}, got {actual}); the download was "
        "discarded and the destination was not touched",
        algorithm=name,
        expected=expected,
        actual=actual,
        source=display,
    )
