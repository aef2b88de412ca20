"""The one skip rule (`_sync.up_to_date`), Last-Modified parsing, header checks and
`--request-payer`'s argument forms. Pure or on tmp files only."""

from __future__ import annotations

import hashlib
import os
import pickle
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget import BackendOptions
from objget.backends._headers import REDACTED, check_headers, parse_header, redacted
from objget.cli import parser
from objget.engine._sync import remote_seconds, stamp, up_to_date

T = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate (HEAD)
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime: no zone, GMT by definition
        "1994-11-06T08:49:37.000Z",  # S3/OSS listings
        "1994-11-06T09:49:37+01:00",
    ],
)
def test_last_modified_forms(text):
    assert remote_seconds(text) == T


@pytest.mark.parametrize("text", [None, "", "  ", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_unreadable_last_modified(text):
    assert remote_seconds(text) is None


def test_up_to_date_needs_size_and_mtime(tmp_path):
    lm = "Sun, 06 Nov 1994 08:49:37 GMT"
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    fd = os.open(f, os.O_RDWR)
    try:
        assert stamp(fd, lm) and not stamp(fd, None)
    finally:
        os.close(fd)
    assert f.stat().st_mtime_ns == T * 10**9
    assert up_to_date(str(f), size=3, last_modified=lm)
    os.utime(f, ns=(0, T * 10**9 + 999_999_999))  # same second
    assert up_to_date(str(f), size=3, last_modified=lm)
    assert not up_to_date(str(f), size=4, last_modified=lm)
    assert not up_to_date(str(f), size=3, last_modified="Sun, 06 Nov 1994 08:49:38 GMT")
    assert not up_to_date(str(f), size=3, last_modified=None)
    assert not up_to_date(str(f), size=None, last_modified=lm)
    assert not up_to_date(str(tmp_path / "missing"), size=3, last_modified=lm)
    link = tmp_path / "link"
    link.symlink_to(f)
    assert not up_to_date(str(link), size=3, last_modified=lm)  # a symlink is not followed
    assert not up_to_date(str(tmp_path), size=3, last_modified=lm)
    good = hashlib.sha256(b"abc").hexdigest()
    assert up_to_date(str(f), size=3, last_modified=lm, sha256=good.upper())
    assert not up_to_date(str(f), size=3, last_modified=lm, sha256="0" * 64)


def test_headers_parsed_checked_and_redacted():
    assert parse_header("x-trace-id:  a b ") == ("X-Trace-Id", "a b")
    assert parse_header("authorization: Bearer t") == ("Authorization", "Bearer t")
    shown = redacted(
        check_headers({"Cookie": "c", "X-Api-Key": "k", "X-Amz-Security-Token": "t", "A": "v"})
    )
    assert shown == {
        "Cookie": REDACTED, "X-Api-Key": REDACTED, "X-Amz-Security-Token": REDACTED, "A": "v"
    }  # fmt: skip
    assert check_headers([("user-agent", "a"), ("User-Agent", "b")]) == {"User-Agent": "b"}
    for bad in ("no colon here secret", ": v", "Bad Name: v", "If-Match: x", "X: a\nb", "X: €"):
        with pytest.raises(ValueError) as info:
            parse_header(bad)
        assert "secret" not in str(info.value) and "a\nb" not in str(info.value)


def test_backend_options_keep_headers_out_of_repr():
    opts = BackendOptions(headers={"authorization": "Bearer SECRET"})
    assert dict(opts.headers) == {"Authorization": "Bearer SECRET"}
    assert "SECRET" not in repr(opts)
    assert pickle.loads(pickle.dumps(opts)) == opts and hash(opts) == hash(opts)
    with pytest.raises(ValueError):
        BackendOptions(headers={"Range": "bytes=0-0"})


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--request-payer", "requester", "s3://b/k"], ["s3://b/k"]),
        (["--request-payer", "s3://b/k", "d"], ["s3://b/k", "d"]),
        (["s3://b/k", "--request-payer"], ["s3://b/k"]),
        (["--request-payer=requester"], []),
    ],
)
def test_request_payer_forms(args, words):
    """`--request-payer` takes `requester` as its value and nothing else (a URL after it is
    SOURCE); alone it means `requester`; after `--` it is a word, not the option."""
    ns, positional = parser().parse(args)
    assert (ns.request_payer, positional) == ("requester", words)
    ns, positional = parser().parse(["--", "--request-payer"])
    assert (ns.request_payer, positional) == (None, ["--request-payer"])


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)))
def test_an_imf_fixdate_reads_as_email_utils_reads_it(when):
    """The IMF-fixdate fast path (no `email` import for what servers send) agrees with
    `email.utils` on every date."""
    from email.utils import format_datetime, parsedate_to_datetime

    text = format_datetime(when.replace(microsecond=0, tzinfo=timezone.utc), usegmt=True)
    assert remote_seconds(text) == int(parsedate_to_datetime(text).timestamp())
