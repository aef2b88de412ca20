"""libc's functions for the calls `os` has no binding for (`sync_file_range`, `syncfs`, `fstatfs`),
bound through `_ctypes`, the C module under `ctypes`.

The objects are the ones `ctypes.CDLL(None, use_errno=True).name` makes: a `CFuncPtr` class
(cdecl, errno kept for `ctypes.get_errno`) called with `(name, library)`, and its argument and
result types as `_SimpleCData` classes of ctypes' type codes. Importing `ctypes` itself (its
forty-odd type classes, `ctypes._endian`, the library loaders) was ~9.7 M instructions of an
8 MiB download's ~250 M; binding this way ~3 M (callgrind; docs/architecture.md, Start-up).
Where `_ctypes` lacks any of it (another Python), `ctypes` binds the function instead.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Any

__all__ = ["libc_function"]

# ctypes' type names -> their type codes (as ctypes/__init__.py declares them)
_CODES = {"c_int": "i", "c_uint": "I", "c_int64": "q", "c_char_p": "z"}

_libc: dict[str, Any] = {}
_made: dict[str, Any] = {}  # the function class, libc's handle, the type classes


def libc_function(name: str, argtypes: tuple[str, ...], restype: str = "c_int") -> Any:
    """libc's `name`, loaded once per process; None where there is none (not Linux, or a
    libc without it). The types are the names of ctypes' types ("c_int", "c_int64",
    "c_char_p", "c_uint"), so callers need not import anything before they know the call
    exists."""
    if name not in _libc:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                fn = _bind(name, argtypes, restype)
            except (ImportError, AttributeError, KeyError, OSError):  # no such function, or
                fn = _bind_with_ctypes(name, argtypes, restype)  # not CPython's _ctypes
        _libc[name] = fn
    return _libc[name]


class _Library:
    """What a `CFuncPtr` is called with beside the name: an object with the `_handle`."""

    __slots__ = ("_handle",)

    def __init__(self, handle: int) -> None:
        self._handle = handle


def _bind(name: str, argtypes: tuple[str, ...], restype: str) -> Any:
    import _ctypes

    ct: Any = _ctypes  # ctypes' private half: typeshed describes it only in part
    if "function" not in _made:
        flags = ct.FUNCFLAG_CDECL | ct.FUNCFLAG_USE_ERRNO
        meta = type(ct.CFuncPtr)
        _made["function"] = meta("_FuncPtr", (ct.CFuncPtr,), {"_flags_": flags})
        _made["library"] = _Library(ct.dlopen(None, ct.RTLD_LOCAL))
    fn = _made["function"]((name, _made["library"]))  # AttributeError when libc lacks it
    fn.argtypes = tuple(_type(ct, t) for t in argtypes)
    fn.restype = _type(ct, restype)
    return fn


def _type(ct: Any, name: str) -> type:
    found: type | None = _made.get(name)
    if found is None:
        base = ct._SimpleCData
        found = _made[name] = type(base)(name, (base,), {"_type_": _CODES[name]})
    return found


def _bind_with_ctypes(name: str, argtypes: tuple[str, ...], restype: str) -> Any:
    import ctypes

    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = tuple(getattr(ctypes, t) for t in argtypes)
    fn.restype = getattr(ctypes, restype)
    return fn
