"""Which forward proxy a request goes through: the `proxy` / `no_proxy` settings of
`DownloadConfig`, else the environment, read as curl reads it.

Environment (curl's rules, which Python's urllib shares except for one name):

- `http://` URLs: `http_proxy`, lowercase only. An uppercase `HTTP_PROXY` is ignored, as curl
  ignores it: a CGI server puts a request's `Proxy:` header into the environment as
  `HTTP_PROXY` ("httpoxy"), so a client must not trust that name. Python's urllib ignores it
  only when `REQUEST_METHOD` is set; objget always does, and says so in the log.
- `https://` URLs: `https_proxy`, else `HTTPS_PROXY`.
- either, when the scheme's own variable is unset: `all_proxy`, else `ALL_PROXY`.
- exceptions: `no_proxy`, else `NO_PROXY`.

A lowercase variable that is set wins over the uppercase one even when empty, and an empty
proxy means no proxy (as in curl and urllib). `DownloadConfig.proxy` replaces the proxy
variables for every scheme (`""`: no proxy at all); `DownloadConfig.no_proxy` replaces the
exceptions (`""`: none), as curl's `--proxy` and `--noproxy` do.

The exception list (`match_no_proxy`), curl's syntax: entries separated by commas or white
space; `*` alone matches every host; a name matches itself and every name below it
(`example.com` and `.example.com` both match `a.example.com`, neither matches
`notexample.com`); an IP address matches itself, a CIDR block (`10.0.0.0/8`, `fd00::/8`) every
address in it (curl since 7.86). A host that is an IP address is matched against addresses and
blocks only (`3.4` does not cover `1.2.3.4`). Names are compared case-insensitively and never
resolved. Added from Python's urllib: `name:port` matches that port only; `[v6]` brackets.

Only `http://` proxies are supported (plain HTTP to the proxy; `https://` through CONNECT,
`http://` in absolute form); another scheme is a ValueError when the settings are read. A
`user:password@` in the proxy URL becomes a `Proxy-Authorization: Basic` header; the URL is
only ever shown without it (`ProxyUrl.shown`, the repr).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .._log import log

__all__ = ["ProxyRules", "ProxyUrl", "match_no_proxy", "parse_proxy", "proxy_rules"]

_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True, slots=True)
class ProxyUrl:
    """A forward proxy: `host`, `port` and, when the URL had them, credentials (never shown)."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The proxy's URL without credentials (what urllib3 is given)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def shown(self) -> str:
        """The URL as messages show it: credentials, when there are any, as REDACTED."""
        return self.url.replace("://", "://REDACTED@", 1) if self.user is not None else self.url

    def headers(self) -> dict[str, str]:
        """`Proxy-Authorization` when the URL carried credentials, else nothing."""
        if self.user is None:
            return {}
        token = f"{self.user}:{self.password or ''}".encode()
        return {"Proxy-Authorization": "Basic " + base64.b64encode(token).decode("ascii")}

    def __repr__(self) -> str:
        return f"ProxyUrl({self.shown!r})"

    __str__ = __repr__


def parse_proxy(text: str, *, name: str = "proxy") -> ProxyUrl:
    """A proxy URL (`http://[user:password@]host[:port]`; without a scheme, http:// as curl
    assumes). The port defaults to 1080 as in curl. Errors never quote the URL: it may hold a
    password.

    >>> parse_proxy("proxy.example:3128")
    ProxyUrl('http://proxy.example:3128')
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ValueError(f"{name}: not a valid URL (a port out of range?)") from None
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"{name}: the {parts.scheme.lower()}:// scheme is not supported (only http:// proxies)"
        )
    if not parts.hostname:
        raise ValueError(f"{name}: the URL names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{name}: give only scheme, host and port (and credentials)")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyUrl(host=parts.hostname, port=port or 1080, user=user, password=password)


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """The proxy for each scheme and the exceptions; `for_url` picks one for a request."""

    http: ProxyUrl | None = None
    https: ProxyUrl | None = None
    no_proxy: str = ""

    def for_url(self, url: str) -> ProxyUrl | None:
        """The proxy to send a request for `url` through, or None to connect directly."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        proxy = self.http if scheme == "http" else self.https if scheme == "https" else None
        if proxy is None or not parts.hostname:
            return None
        port = port or (443 if scheme == "https" else 80)
        if self.no_proxy and _bypass(parts.hostname, port, self.no_proxy):
            return None
        return proxy

    @property
    def any(self) -> bool:
        return self.http is not None or self.https is not None


def proxy_rules(
    proxy: str | None, no_proxy: str | None, environ: Mapping[str, str] | None = None
) -> ProxyRules:
    """The rules for `DownloadConfig.proxy` / `.no_proxy`, the environment filling in what
    they leave as None (see the module docstring)."""
    env = os.environ if environ is None else environ
    exceptions = no_proxy if no_proxy is not None else _env(env, "no_proxy", "NO_PROXY") or ""
    if proxy is not None:
        one = parse_proxy(proxy) if proxy.strip() else None
        return ProxyRules(http=one, https=one, no_proxy=exceptions)
    every = _env(env, "all_proxy", "ALL_PROXY")
    if env.get("http_proxy") is None and env.get("HTTP_PROXY"):
        log.info("HTTP_PROXY is ignored (CGI-unsafe, as in curl): set http_proxy instead")
    found = []
    for names in (("http_proxy",), ("https_proxy", "HTTPS_PROXY")):
        name = next((n for n in names if env.get(n) is not None), None)
        if name is None and every is not None:
            name = "all_proxy" if env.get("all_proxy") is not None else "ALL_PROXY"
        value = env.get(name) if name else None
        found.append(parse_proxy(value, name=name) if name and value and value.strip() else None)
    return ProxyRules(http=found[0], https=found[1], no_proxy=exceptions)


def _env(env: Mapping[str, str], lower: str, upper: str) -> str | None:
    value = env.get(lower)
    return env.get(upper) if value is None else value


@functools.lru_cache(maxsize=1024)
def _bypass(host: str, port: int, no_proxy: str) -> bool:
    """`match_no_proxy`, remembered: a download asks about the same host for every request."""
    return match_no_proxy(host, port, no_proxy)


def match_no_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether `host` (a name or an IP address, as in the URL) on `port` is an exception.

    >>> match_no_proxy("a.example.com", 443, ".example.com")
    True
    >>> match_no_proxy("notexample.com", 443, "example.com")
    False
    """
    host = host.strip("[]").rstrip(".").lower()
    address = _address(host)
    for entry in _SEPARATORS.split(no_proxy.strip()):
        if not entry:
            continue
        if entry == "*":
            return True
        name, want_port = _split_port(entry.lower())
        if want_port is not None and want_port != port:
            continue
        if "/" in name:
            try:
                net = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == net.version and address in net:
                return True
            continue
        entry_address = _address(name)
        if entry_address is not None:
            if address is not None and address == entry_address:
                return True
            continue
        name = name.lstrip(".").rstrip(".")
        if address is None and name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """`name:port` / `[v6]:port` → (name, port); a bare IPv6 address keeps its colons."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return inside, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
