"""PURE: where a request goes and the request target it carries, written as urllib3 wrote
them before objget had its own client (so servers, signatures and proxies see the same bytes).

`origin(url)` is the scheme, host and port to connect to (a host lower-cased, an IDNA name in
its ASCII form, an IPv6 literal without brackets; the scheme's port when none is given) and the
`Host` header (`host[:port]`, the port only when not the scheme's own).

`target(url, as_written=...)` is the origin-form request target:

- as written (a request a backend built and signed itself): the path and query exactly as in
  `url`; only characters that may not appear in a request line are percent-encoded;
- followed (`as_written=False`, a plain URL and the redirects it leads to): also `.` and `..`
  segments resolved (RFC 3986 5.2.4), as curl and browsers send them.

Percent-encoding keeps the unreserved and sub-delimiter characters, `:@/` (and `?` in a query).
A `%` starting a valid `%XX` escape is kept, its hex digits upper-cased, as long as every `%` of
the component starts one; otherwise every `%` is encoded as `%25` (the component was not
encoded before). A component with nothing to encode is returned as it is.

>>> target("http://h/a b/../c?x=1", as_written=True)
'/a%20b/../c?x=1'
>>> target("http://h/a b/../c?x=1", as_written=False)
'/c?x=1'

`scheme(url)` and the host and port of `origin` are `urllib.parse.urlsplit`'s answers; a plain
URL (ASCII, no brackets, user info, `%` or whitespace in its authority) is read here without
importing `urllib.parse`, which imports `ipaddress` (~10 M instructions of an 8 MiB download's
run): every other one goes to `urlsplit` itself (`tests/unit/test_target_split.py` holds the
two to the same answers).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "Origin", "absolute", "encode", "host_port", "origin", "remove_dot_segments", "same_origin",
    "scheme", "target",
]  # fmt: skip

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_PATH_SAFE = frozenset(_UNRESERVED + "!$&'()*+,;=" + ":@/")
_QUERY_SAFE = _PATH_SAFE | {"?"}
# a path and query that need no work at all: the common case (`_plain`; the patterns compile
# at their first use: a target without '%' or a dot segment needs none)
_PLAIN = (
    r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*"
    r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?"
)
_ESCAPE = r"%[0-9A-Fa-f]{2}"
_DEFAULT_PORT = {"http": 80, "https": 443}
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.")
# what makes urlsplit do more than split: brackets (IPv6), user info, a zone or escape, the
# characters it removes or strips, the ones that end an authority
_NOT_PLAIN = frozenset("[]@%\t\r\n /?#")
_NOT_PLAIN_URL = frozenset("[]\t\r\n")


# eq=False: nothing compares these by value (identity), so no __eq__/__hash__ is built at import
@dataclass(frozen=True, eq=False, slots=True)
class Origin:
    """Where to connect: `scheme` ("http"/"https"), `host` (no brackets), `port`; and the
    `Host` header value for it."""

    scheme: str
    host: str
    port: int
    host_header: str

    @property
    def netloc(self) -> str:
        """`host:port` as a CONNECT request names it (brackets around IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def origin(url: str) -> Origin:
    """The origin of an http(s) URL; ValueError for another scheme, no host, a bad port or a
    host with characters no host name has."""
    scheme, sep, rest = url.partition("://")
    end = len(rest)
    for mark in "/?#":
        i = rest.find(mark, 0, end)
        if i >= 0:
            end = i
    return _origin(scheme if sep else "", rest[:end])


def scheme(url: str) -> str:
    """`urlsplit(url).scheme.lower()`: the URL's scheme, lower-cased ("" for none); the
    ValueError urlsplit raises for a URL it rejects."""
    if url.isascii() and url[:1] > " " and _NOT_PLAIN_URL.isdisjoint(url):
        name, sep, _ = url.partition(":")
        if sep and name and name[0].isalpha() and _SCHEME_CHARS.issuperset(name):
            return name.lower()
        return ""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme.lower()


def host_port(scheme: str, netloc: str) -> tuple[str, str | None, int | None]:
    """The scheme (lower-cased), host name (lower-cased; None for none) and port (None for
    none) of `scheme://netloc`, as `urlsplit` reads them; the port is read for an http(s)
    scheme only (ValueError when it is not a number in 0-65535), as `origin` rejects any
    other first. ValueError for an authority urlsplit rejects."""
    lowered = scheme.lower()
    if lowered in _DEFAULT_PORT and netloc.isascii() and _NOT_PLAIN.isdisjoint(netloc):
        host, _, text = netloc.partition(":")
        port = None
        if text:
            if not text.isdigit():
                raise ValueError(f"Port could not be cast to integer value as {text!r}")
            port = int(text)
            if not 0 <= port <= 65535:
                raise ValueError("Port out of range 0-65535")
        return lowered, host.lower() or None, port
    from urllib.parse import urlsplit

    parts = urlsplit(f"{scheme}://{netloc}")
    lowered = parts.scheme.lower()
    return lowered, parts.hostname, parts.port if lowered in _DEFAULT_PORT else None


@functools.lru_cache(maxsize=256)
def _origin(scheme: str, netloc: str) -> Origin:
    """The origin for a scheme and authority (a download asks about the same few, each
    request: remembered)."""
    scheme, host, port = host_port(scheme, netloc)  # ValueError for an http(s) URL's bad port
    if scheme not in _DEFAULT_PORT:
        raise ValueError(f"not an http(s) URL (scheme {scheme!r})")
    if not host:
        raise ValueError("the URL names no host")
    if not host.isascii():
        host = b".".join(
            label.encode("idna") if not label.isascii() else label.encode()
            for label in host.split(".")
        ).decode("ascii")
    if any(c in host for c in " \t\r\n/\\@?#%<>\"'"):
        raise ValueError("the URL's host has characters a host name cannot have")
    default = _DEFAULT_PORT[scheme]
    port = default if port is None else port
    shown = host.rstrip(".") if ":" not in host else f"[{host}]"
    header = shown if port == default else f"{shown}:{port}"
    return Origin(scheme=scheme, host=host, port=port, host_header=header)


def same_origin(a: Origin, b: Origin) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def target(url: str, *, as_written: bool) -> str:
    """The origin-form request target of `url` (see the module docstring)."""
    rest = url.split("://", 1)[-1]
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    tail = "" if cut < 0 else rest[cut:]
    tail = tail.split("#", 1)[0]
    path, mark, query = tail.partition("?")
    if as_written and not query:
        mark = ""  # a backend's URL with an empty query: no "?" (as it was sent before)
    if not path.startswith("/"):
        path = "/" + path  # "http://h?x" asks for "/?x"
    whole = path + mark + query
    if _plain(whole) and (as_written or not _dot_segment(path)):
        return whole
    if not as_written:
        path = remove_dot_segments(path) or "/"
    out = encode(path, _PATH_SAFE)
    if mark:
        out += "?" + encode(query, _QUERY_SAFE)
    return out


def _plain(whole: str) -> bool:
    """Whether the target `whole` ("/path?query") is all allowed characters and upper-case
    `%XX` escapes (`_PLAIN`); without a '%' a set test decides it."""
    if "%" in whole:
        return re.fullmatch(_PLAIN, whole) is not None
    path, mark, query = whole.partition("?")
    safe = path.startswith("/") and _PATH_SAFE.issuperset(path)
    return safe and (not mark or _QUERY_SAFE.issuperset(query))


def _dot_segment(path: str) -> bool:
    """Whether `path` (it starts with '/') has a `.` or `..` segment."""
    return "/." in path and any(s in (".", "..") for s in path.split("/"))


def absolute(url: str, *, as_written: bool) -> str:
    """The absolute-form target for a plain-http proxy: `http://` and the URL's host and port
    as it writes them (without credentials), then `target(url)`."""
    from urllib.parse import urlsplit  # through a proxy only

    netloc = urlsplit(url).netloc.rpartition("@")[2]
    return f"http://{netloc}{target(url, as_written=as_written)}"


def encode(component: str, safe: frozenset[str]) -> str:
    """`component` with every character outside `safe` percent-encoded (UTF-8), keeping
    valid `%XX` escapes when every `%` starts one (their hex upper-cased)."""
    if "%" not in component and component.isascii() and all(c in safe for c in component):
        return component
    component, escapes = re.subn(_ESCAPE, lambda m: m.group(0).upper(), component)
    raw = component.encode("utf-8", "surrogatepass")
    keep_percent = escapes == raw.count(b"%")
    out = bytearray()
    for byte in raw:
        if (byte == 0x25 and keep_percent) or (byte < 128 and chr(byte) in safe):
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return out.decode("ascii")


def remove_dot_segments(path: str) -> str:
    """`path` with `.` and `..` segments resolved (RFC 3986 5.2.4); `..` above the root is
    dropped. A path ending in `/.` or `/..` keeps its trailing slash.

    >>> remove_dot_segments("/a/b/../../../c/./d")
    '/c/d'
    """
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if path.startswith("/") and (not kept or kept[0]):
        kept.insert(0, "")
    if path.endswith(("/.", "/..")):
        kept.append("")
    return "/".join(kept)
