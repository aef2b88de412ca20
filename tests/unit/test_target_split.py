"""A plain URL is read without `urllib.parse` (issue 16, start-up: it imports `ipaddress`,
~10 M instructions of an 8 MiB download's run): `_target.scheme`, `_target.host_port` and
`redact_url` give `urlsplit`'s answers (and its ValueErrors) for every input, the plain ones
read by a few string operations, the others by `urlsplit` itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends import _redact
from objget.backends._target import _origin, host_port, scheme

from .test_import_cost import _loaded_after

PIECES = st.sampled_from([
    "http", "HTTPS", "s3", "oss", "h", "x+y.z-1", "1a", ":", "://", "//", "/", "?", "#", "@",
    "[", "]", "[::1]", "%", "%41", ".", "80", "65535", "65536", "-1", "+8", "0x1", "١", "é", " ",
    "\t", "\n", "\r", "\x00", "\x1f", "user:pw@", "Host.Example", "a=b&c=d",
])  # fmt: skip
TEXT = st.lists(st.one_of(PIECES, st.characters(max_codepoint=0x3FF)), max_size=10).map("".join)


def _outcome(f, *args):
    """`f(*args)`, or the ValueError it raised (by its message)."""
    try:
        return f(*args)
    except ValueError as exc:
        return ("ValueError", str(exc))


def _urlsplit_host_port(scheme_: str, netloc: str) -> tuple[str, str | None, int | None]:
    """What `_target._origin` read from urlsplit before: the port of an http(s) URL only."""
    parts = urlsplit(f"{scheme_}://{netloc}")
    lowered = parts.scheme.lower()
    return lowered, parts.hostname, parts.port if lowered in ("http", "https") else None


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_scheme_is_urlsplits(url):
    for text in (url, "http://" + url, "HTTP:" + url, " s3://" + url):
        assert _outcome(scheme, text) == _outcome(lambda u: urlsplit(u).scheme.lower(), text)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(["http", "https", "HTTP", "hTtPs", "ftp", "", " http", "ht tp"]), TEXT)
def test_host_and_port_are_urlsplits(scheme_, netloc):
    for text in (netloc, "h:" + netloc, netloc.split("/")[0]):
        expected = _outcome(_urlsplit_host_port, scheme_, text)
        assert _outcome(host_port, scheme_, text) == expected, (scheme_, text)


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_a_url_given_back_as_it_is_is_what_urlsplit_gives(url):
    for text in (url, "http://" + url, "https://h:1/" + url):
        if _redact._as_it_is(text):
            parts = urlsplit(text)
            assert parts.netloc.rsplit("@", 1)[-1] == parts.netloc
            assert (parts.query, parts.fragment) == ("", "")
            assert parts.geturl() == text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h/a b", "http://h/a b"),
        ("HTTP://h/a", "http://h/a"),
        ("http://u:p@h/a?X-Amz-Signature=s&versionId=1#f", None),
        ("http://[::1]:80/a", "http://[::1]:80/a"),
        ("http://h/%41", "http://h/%41"),
    ],
)
def test_redact_url_still_redacts(url, shown):
    got = _redact.redact_url(url)
    if shown is None:
        assert got == "http://REDACTED@h/a?X-Amz-Signature=REDACTED&versionId=1"
    else:
        assert got == shown


def test_an_origin_reads_ports_and_hosts_as_before():
    _origin.cache_clear()
    assert _origin("http", "Example.COM:8080").host_header == "example.com:8080"
    assert _origin("https", "h").port == 443
    assert _origin("http", "[::1]:81").host_header == "[::1]:81"
    for bad in ("h:x", "h:65536", "h:-1", "[::1"):
        with pytest.raises(ValueError):
            _origin("http", bad)
    with pytest.raises(ValueError, match="not an http"):
        _origin("ftp", "h:x")  # the scheme is refused first, as before


def test_resolving_a_plain_url_loads_no_urllib_parse():
    code = (
        "from objget.backends import resolve\n"
        "from objget.backends._target import origin, target\n"
        "from objget.backends._redact import redact_url\n"
        "from objget.backends._transport import Transport\n"
        "url = 'http://127.0.0.1:8080/a/b.bin'\n"
        "assert redact_url(url) == url\n"
        "assert origin(url).port == 8080 and target(url, as_written=False) == '/a/b.bin'\n"
        "assert resolve(url, Transport.__new__(Transport)).key == url\n"
    )
    loaded = _loaded_after(code)
    assert [m for m in loaded if m in ("urllib.parse", "ipaddress")] == []
