"""Extra request headers for http(s):// sources (`--header 'Name: value'`): parsed, checked
and shown redacted. Pure: no I/O.

A header whose name looks like a credential (Authorization, Cookie, X-Amz-Security-Token, any
name with `auth`, `token`, `secret`, `key`, `session`, `password`, `signature` or
`credential` in it) is shown as `REDACTED` in logs; an error about a header never quotes its
value. Headers objget sets itself (Range, the If-* validators, Accept-Encoding, framing) are
refused: changing them would change which bytes arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ._redact import REDACTED, secret_name

__all__ = ["REDACTED", "check_headers", "parse_header", "redacted", "secret"]


# compiled at their first use (re's cache), when there are headers of the user's to check
_FIELD_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"  # RFC 9110 field-name
_BAD_VALUE = r"[\x00-\x08\x0a-\x1f\x7f]"  # CR, LF, NUL and other controls
_OWN = frozenset(
    {
        "range",
        "if-match",
        "if-none-match",
        "if-range",
        "if-modified-since",
        "if-unmodified-since",
        "accept-encoding",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "expect",
    }
)


secret = secret_name  # a header of this name may carry a credential


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _shown(name: str) -> str:
    return repr(name if not secret(name) and len(name) <= 40 else name[:12] + "...")


def _check(name: str, value: str) -> None:
    if not re.match(_FIELD_NAME, name):
        raise ValueError(
            f"invalid header name {_shown(name)}: a header must look like 'Name: value'"
        )
    if name.lower() in _OWN:
        raise ValueError(
            f"header {_canonical(name)} cannot be set: objget sets it to keep the download "
            "ranged, pinned to one version and verifiable"
        )
    if re.search(_BAD_VALUE, value):
        raise ValueError(f"the value of header {_canonical(name)} has a control character")
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"the value of header {_canonical(name)} must be Latin-1 text"
            ) from None


def parse_header(text: str) -> tuple[str, str]:
    """`'Name: value'` → (canonical name, value). The error never quotes a value."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name:
        raise ValueError("a header must look like 'Name: value'")
    value = value.strip()
    _check(name, value)
    return _canonical(name), value


def check_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Validated headers with canonical names (a repeated name: the last value wins)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name, value = raw_name.strip(), raw_value.strip()
        _check(name, value)
        out[_canonical(name)] = value
    return out


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers as they may be shown: credential-like values replaced by `REDACTED`."""
    return {name: REDACTED if secret(name) else value for name, value in headers.items()}
