"""Two OpenSSL settings of a client context that Python's `ssl` has no call for, set through
ctypes on the context's `SSL_CTX` (`tune`):

- **read-ahead** (`SSL_CTX_set_read_ahead`): OpenSSL reads what the socket has, up to its
  record buffer, instead of each record's 5-byte header and then its body in two `recv`s.
  Measured for 1 GiB over TLS 1.2 from nginx on loopback: 131,000 `read` calls became 65,600;
  a reader with `_body`'s loop (bodies not written) used 0.82 -> 0.76 s of CPU, the CLI at
  `-j 1` 1155 -> 1101 ms (medians of 10 and 5 alternated runs on a shared machine). It changes
  no byte and no check: records are still decrypted and authenticated one by one, and
  `SSL_read` hands out only what was authenticated.
- **TLS 1.3 suite order**: the same suites, TLS_AES_128_GCM_SHA256 proposed first (as for
  TLS 1.2 in `_tls._prefer_aes128`; Python 3.11's `set_ciphers` cannot order TLS 1.3 suites).

Guarded; when any check fails nothing is changed and the context works as Python made it:

- CPython, 3.10 to 3.14, without `Py_TRACE_REFS` (which widens the object header): the C
  struct behind `ssl.SSLContext` begins `PyObject_HEAD; SSL_CTX *ctx;` in every CPython
  from 2.7 to 3.14 (`Modules/_ssl.c`), so the pointer is the word after the object header;
- OpenSSL is reached through the `_ssl` extension itself (its own libssl, never another one in
  the process), and reports the version `ssl.OPENSSL_VERSION_NUMBER` says, 1.1.1 or later;
- the pointer is checked before anything is set: `SSL_CTX_get_options` on it must give
  `ctx.options`, and a flag flipped through Python must show there too. After the change,
  read-ahead must read back as set, and `ctx.get_ciphers()` (Python's own view of the same
  SSL_CTX) must list the TLS 1.3 suites in the new order; otherwise the order is put back.

Linux only (where it was measured); elsewhere `tune` does nothing.
"""

from __future__ import annotations

import functools
import ssl
import sys
from typing import Any

__all__ = ["tune"]

_SET_READ_AHEAD = 41  # SSL_CTRL_SET_READ_AHEAD (ssl.h, 1.1.1 and 3.x)
_GET_READ_AHEAD = 40  # SSL_CTRL_GET_READ_AHEAD
_MIN_OPENSSL = 0x10101000  # 1.1.1: SSL_CTX_set_ciphersuites, uint64 options
_FIRST = "TLS_AES_128_GCM_SHA256"


def tune(ctx: ssl.SSLContext) -> bool:
    """Read-ahead and AES-128-GCM first for TLS 1.3 on `ctx`; True when both were set and
    verified, False when a guard said no (then `ctx` is as it was)."""
    lib = _libssl()
    if lib is None:
        return False
    ptr = _ctx_pointer(ctx, lib)
    if ptr is None:
        return False
    lib.SSL_CTX_ctrl(ptr, _SET_READ_AHEAD, 1, None)
    if lib.SSL_CTX_ctrl(ptr, _GET_READ_AHEAD, 0, None) != 1:
        return False
    return _order_tls13(ctx, lib, ptr)


@functools.cache
def _libssl() -> Any:
    """The libssl of the `_ssl` extension, with the prototypes used here; None when it cannot
    be reached safely."""
    if not _layout_known():
        return None
    try:
        import _ssl
        import ctypes

        path = getattr(_ssl, "__file__", None)
        if not path:
            return None  # built into the interpreter: not looked into
        lib = ctypes.CDLL(path)  # already loaded: the same handle
        version = lib.OpenSSL_version_num  # from its libcrypto (a dependency of the handle)
        version.restype, version.argtypes = ctypes.c_ulong, []
        if version() != ssl.OPENSSL_VERSION_NUMBER or version() < _MIN_OPENSSL:
            return None
        ptr = ctypes.c_void_p
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_get_options.argtypes = [ptr]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_ctrl.argtypes = [ptr, ctypes.c_int, ctypes.c_long, ptr]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ptr, ctypes.c_char_p]
    except (ImportError, OSError, AttributeError):  # no ctypes, no symbol exported
        return None
    return lib


def _layout_known() -> bool:
    """Whether `ssl.SSLContext`'s C struct is known to start with the SSL_CTX pointer."""
    return (
        sys.platform.startswith("linux")
        and sys.implementation.name == "cpython"
        and (3, 10) <= sys.version_info[:2] <= (3, 14)
        and not hasattr(sys, "getobjects")  # Py_TRACE_REFS: two more words in the header
    )


def _ctx_pointer(ctx: ssl.SSLContext, lib: Any) -> int | None:
    """The SSL_CTX* of `ctx`, checked against Python's view of its options."""
    import ctypes

    if type(ctx).__basicsize__ < object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p):
        return None
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr or lib.SSL_CTX_get_options(ptr) != int(ctx.options):
        return None
    flag = ssl.OP_NO_TICKET  # flipped and restored through Python: must show on the pointer
    before = ctx.options
    try:
        ctx.options ^= flag
        seen = lib.SSL_CTX_get_options(ptr) == int(ctx.options)
    finally:
        ctx.options = before
    return ptr if seen else None


def _order_tls13(ctx: ssl.SSLContext, lib: Any, ptr: int) -> bool:
    """The context's TLS 1.3 suites with TLS_AES_128_GCM_SHA256 first, verified through
    `get_ciphers`; put back as they were when the check fails."""
    names = _tls13(ctx)
    if _FIRST not in names or names[0] == _FIRST:
        return True
    wanted = [_FIRST, *(n for n in names if n != _FIRST)]
    if lib.SSL_CTX_set_ciphersuites(ptr, ":".join(wanted).encode()) == 1 and _tls13(ctx) == wanted:
        return True
    lib.SSL_CTX_set_ciphersuites(ptr, ":".join(names).encode())
    return False


def _tls13(ctx: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in ctx.get_ciphers() if c.get("protocol") == "TLSv1.3"]
