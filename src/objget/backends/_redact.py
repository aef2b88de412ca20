"""Secrets out of URLs and log records: presigned query strings, user:password in a URL,
secret headers (SSE-C key, session tokens, Authorization) and request signatures.

`redact_url` is for the URLs objget shows (error messages, `source`). `RedactFilter` rewrites a
whole log record: the formatted message, an exception's traceback text and stack info, so
nothing a library puts in its arguments (a URL in an exception's repr, a redirect's target)
gets through. The library puts it on the loggers of the libraries under it (botocore and the
urllib3 its credential requests go through, the Alibaba Cloud credentials) and on its own; a
logger's filter sees only the records logged on that very logger, so the command also puts it
on the handler it installs for `-v`/`-vv`, which sees every record of every logger.
"""

from __future__ import annotations

import re
import sys
import threading

from .._log import when_bound

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from logging import Handler, LogRecord
    from typing import TextIO

__all__ = [
    "REDACTED",
    "RedactFilter",
    "SecretHeaders",
    "SecretPairs",
    "install_redaction",
    "mask_key_id",
    "redact_text",
    "redact_url",
    "redacting_handler",
    "secret_name",
]

_KEEP_QUERY = frozenset({"versionId", "partNumber"})
# the patterns are compiled at their first use (re's cache): a download that logs nothing and
# fails nowhere never reads free text
_QUERY = r"\?([^\s\"'<>()\[\]{},;|`\\]*)"
_USERINFO = r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"']+@"
# header names whose values are secrets, as they appear in debug text
_NAMES = (
    r"x-amz-server-side-encryption-customer-key|x-amz-security-token|"
    r"x-amz-copy-source-server-side-encryption-customer-key|x-oss-security-token|"
    r"proxy-authorization|authorization|cookie|x-api-key"
)
_SECRET_HEADER = rf"(?im)^((?:{_NAMES})[ \t]*:).*$"
# "Signature=<hex>" of an Authorization header, and botocore.auth's "Signature:\n<hex>" line
_SIGNATURE = r"(Signature\s*[=:]\s*)[0-9a-fA-F]{32,}"
# quoted header pairs as a dict's repr shows them: 'x-amz-security-token': 'secret'
_SECRET_PAIR = rf"""(?i)(['"](?:{_NAMES})['"]\s*:\s*b?)(['"])(?:(?!\2).)*\2"""
REDACTED = "REDACTED"  # what a secret is shown as, everywhere

# a header name that may carry a credential (SecretHeaders, a user's --header)
_CREDENTIAL_HINT = r"(?i)auth|token|secret|key|session|passw|signature|credential|cookie"


def secret_name(name: str) -> bool:
    """True when a header of this name may carry a credential."""
    return re.search(_CREDENTIAL_HINT, name) is not None


# The loggers of the libraries objget drives, by prefix; their modules make them on import.
_PREFIXES = ("urllib3", "botocore", "alibabacloud_credentials", "objget")
_KNOWN = (
    "urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry", "urllib3.response",
    "urllib3.connection", "botocore.auth", "botocore.credentials", "botocore.endpoint",
    "botocore.hooks", "botocore.utils", "botocore.httpsession", "botocore.retryhandler",
    "botocore.session", "botocore.client", "botocore.regions", "botocore.configprovider",
    "botocore.tokens", "objget",
)  # fmt: skip


class SecretHeaders(dict[str, str]):
    """Request headers kept for every request, some of them secret (the SSE-C key, a user's
    Authorization): a dict whose repr and str show the value of every header whose name may
    carry a credential (`auth`, `token`, `secret`, `key`, `cookie`... in it) as REDACTED.

    >>> SecretHeaders({"Range": "bytes=0-9", "x-amz-server-side-encryption-customer-key": "k"})
    {'Range': 'bytes=0-9', 'x-amz-server-side-encryption-customer-key': 'REDACTED'}
    """

    def __repr__(self) -> str:
        shown = {k: REDACTED if secret_name(k) else v for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


class SecretPairs(tuple[tuple[str, str], ...]):
    """(name, value) header pairs, kept hashable and picklable, whose repr and str show the
    value of every credential-like header as REDACTED (as `SecretHeaders`).

    >>> SecretPairs([("X-Api-Key", "k"), ("Accept", "*/*")])
    (('X-Api-Key', 'REDACTED'), ('Accept', '*/*'))
    """

    def __repr__(self) -> str:
        return repr(tuple((k, REDACTED if secret_name(k) else v) for k, v in self))

    __str__ = __repr__


def mask_key_id(access_key_id: str) -> str:
    """An access key id as messages show it: its last four characters (S3 and OSS alike).

    >>> mask_key_id("LTAI5tObjgetTestKey")
    '****tKey'
    """
    return "****" + access_key_id[-4:] if len(access_key_id) >= 8 else "****"


def redact_url(url: str) -> str:
    """The URL with credentials and query values removed (presigned signatures, tokens);
    parameter names and `versionId` are kept so the message stays useful."""
    if _as_it_is(url):
        return url  # what urlsplit and urlunsplit would give back, without importing them
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = f"REDACTED@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), ""))


_NOTHING_TO_REDACT = frozenset("?#@[]\t\r\n")


def _as_it_is(url: str) -> bool:
    """Whether `redact_url` gives `url` back unchanged (an http(s) URL with nothing to remove:
    no query, fragment or user info, nothing urlsplit strips, rejects or lower-cases, and a
    host: urlunsplit drops the slashes of `http:////x`): the URL of every plain download,
    which then need not import `urllib.parse` (and `ipaddress`)."""
    return (
        url.startswith(("http://", "https://"))
        and url.isascii()
        and _NOTHING_TO_REDACT.isdisjoint(url)
        and url.partition("://")[2][:1] not in "/"
    )


def _redact_query(query: str) -> str:
    if not query:
        return query
    from urllib.parse import parse_qsl, urlencode

    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return "REDACTED"
    return urlencode([(k, v if k in _KEEP_QUERY else "REDACTED") for k, v in pairs], safe="")


def redact_text(text: str) -> str:
    """Free text (a log line, a traceback) with every URL query's values, every URL's
    user:password, secret header values and request signatures replaced by REDACTED."""
    if "?" in text:
        text = re.sub(_QUERY, lambda m: "?" + _redact_query(m.group(1)), text)
    if "@" in text:
        text = re.sub(_USERINFO, r"\1REDACTED@", text)
    if ":" in text or "=" in text:
        text = re.sub(_SECRET_HEADER, r"\1REDACTED", text)
        text = re.sub(_SECRET_PAIR, r"\1\2REDACTED\2", text)
        text = re.sub(_SIGNATURE, r"\1REDACTED", text)
    return text


class RedactFilter:
    """Rewrites a record so that no secret reaches any handler: the message is formatted
    here and redacted (the arguments dropped), the traceback and stack text likewise.

    A logging filter is any object with this `filter` method (`logging.Filterer`): not a
    `logging.Filter` subclass, so that `redact_url`'s importers do not import `logging`."""

    def filter(self, record: LogRecord) -> bool:
        if getattr(record, "_objget_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format: logging reports it, without the arguments
            record.args = None
            return True
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            import logging  # a record exists: logging is loaded

            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        setattr(record, "_objget_redacted", True)  # noqa: B010 - not a LogRecord field
        return True


def redacting_handler(stream: TextIO) -> Handler:
    """A stream handler with `RedactFilter`: for the command's `-v`/`-vv` (a handler's filter
    sees every record it handles, from any logger)."""
    import logging

    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter())
    return handler


_lock = threading.Lock()
_filtered: set[str] = set()


def install_redaction() -> None:
    """Put `RedactFilter` on the loggers of objget and the libraries below it that exist now
    (and on the known ones, made here if need be). Called again after botocore is imported,
    for the loggers its modules made. Without `logging` loaded there is no record to redact
    and no logger to put a filter on: then it runs when the library first logs after
    `logging` is loaded (`_log.when_bound`), and again at every call made after that."""
    if "logging" not in sys.modules:
        when_bound(install_redaction)
        return
    import logging

    with _lock:
        existing = [
            name
            for name in list(logging.root.manager.loggerDict)
            if name.startswith(_PREFIXES) and name not in _filtered
        ]
        for name in (*_KNOWN, *existing):
            if name not in _filtered:
                logging.getLogger(name).addFilter(RedactFilter())
                _filtered.add(name)
