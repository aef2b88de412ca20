"""The backend contract: small Protocols. Backends translate; the engine validates; integrity
checks.

`Backend` is what every store does. The capabilities only some stores have are Protocols of
their own (runtime_checkable): `Lister` (list a prefix), `PartLayout` (a multipart upload's
part sizes), `AnswerChecksums` (checksums that come only with a whole-object answer), and, on
a response body, `Abortable`. The classes live in `_protocols.py` (a Protocol needs `typing`,
which a plain download does not import: docs/architecture.md, Start-up) and are given out
here at first access. The engine asks what `isinstance` of one would answer through
`is_abortable`, `part_layout_of` and `answer_checksums_of` (typed, so mypy sees every call;
`tests/unit/test_import_no_typing.py` holds them to `isinstance`); the last is kept per class,
as the per-object path asks it (such an isinstance costs 4-20 us on Python 3.11).

A backend describes the checks an object offers (`ObjectChecks`); it never builds or runs a
checker (`objget.integrity` does). A backend raises only objget's own errors (`RemoteError`
subclasses for final answers, `TransportError` for retryable ones) with the SDK/socket error
as `__cause__`.
"""

from __future__ import annotations

from ..integrity.checks import ObjectChecks

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import TypeGuard

    from ..integrity.checks import Checksummer
    from ._protocols import Abortable, AnswerChecksums, Backend, Lister, PartLayout, RangeBody

__all__ = [
    "Abortable",
    "AnswerChecksums",
    "Backend",
    "Checksummer",
    "Lister",
    "ObjectChecks",
    "PartLayout",
    "RangeBody",
    "answer_checksums_of",
    "is_abortable",
    "part_layout_of",
]

_PROTOCOLS = frozenset(
    {"Abortable", "AnswerChecksums", "Backend", "Lister", "PartLayout", "RangeBody"}
)

if not TYPE_CHECKING:  # mypy sees the imports above

    def __getattr__(name: str) -> object:
        if name in _PROTOCOLS:  # defined (and typing imported) at first access: _protocols.py
            from . import _protocols

            return getattr(_protocols, name)
        if name == "Checksummer":
            from ..integrity.checks import Checksummer as found

            return found
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# What `isinstance(x, P)` asks of a runtime-checkable Protocol P of methods only: that each
# method is an attribute of `x`, and not None (Python 3.12 looks it up statically, so an
# attribute only a `__getattr__` gives counts here, not there). The engine asks it of these
# three without the Protocol classes (which need typing).


def _has(obj: object, method: str) -> bool:
    return getattr(obj, method, None) is not None


def is_abortable(body: object) -> TypeGuard[Abortable]:
    """Whether a response body is an `Abortable` (its read can be broken from another
    thread)."""
    return _has(body, "abort")


def part_layout_of(backend: Backend) -> PartLayout | None:
    """`backend` as a `PartLayout` when it is one (it tells a multipart upload's part sizes),
    else None."""
    return backend if _has(backend, "part_sizes") else None  # type: ignore[return-value]


_ANSWERS: dict[type, bool] = {}


def answer_checksums_of(backend: Backend) -> AnswerChecksums | None:
    """`backend` as an `AnswerChecksums` when it is one, else None; the isinstance answer is
    kept per class (methods live on the class)."""
    cls = type(backend)
    found = _ANSWERS.get(cls)
    if found is None:
        found = _ANSWERS[cls] = _has(backend, "answer_checksums")
    return backend if found else None  # type: ignore[return-value]
