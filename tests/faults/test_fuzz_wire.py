"""Bad input on the wire, hypothesis-fuzzed through a raw-socket server: Content-Range, ETag,
Retry-After, error bodies (S3 and OSS XML) and absurd sizes (negative, > 2^63).

Every example downloads in-process and must end in a byte-identical file or a typed objget
error (never another exception, never a hang), with nothing wrong at the destination, no
checkpoint claiming bytes that are not on disk, and an error text without terminal control
characters (a hostile server must not be able to drive the user's terminal).
"""

from __future__ import annotations

import email.utils
import itertools
import random
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import objget

from ._harness import ckpt_lies, dest_wrong_bytes, same
from ._rawserver import RawRequest, RawServer, Reply, http_reply

SIZE = 192 * 1024
DATA = random.Random(21).randbytes(SIZE)
CONFIG = objget.DownloadConfig(
    max_workers=2,
    part_size=64 * 1024,
    buffer_size=16 * 1024,
    timeouts=objget.Timeouts(connect=2, read=2),
    retry=objget.RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.05, deadline=5),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LATIN1 = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=80
)
_RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


class Case:
    """What the raw server answers in the current example."""

    def __init__(self) -> None:
        self.head: list[tuple[str, str]] = []
        self.content_range = lambda a, b: f"bytes {a}-{b}/{SIZE}"
        self.first_get: Reply | None = None
        self.error: Reply | None = None
        self.etag: str | None = None

    def __call__(self, req: RawRequest) -> Reply:
        if self.error is not None:
            return self.error
        if req.method == "HEAD":
            return http_reply("200 OK", [("Accept-Ranges", "bytes"), *self.head])
        first, self.first_get = self.first_get, None
        if first is not None:
            return first
        if self.etag is not None and req.headers.get("if-match", self.etag) != self.etag:
            return http_reply("412 Precondition Failed", {"Content-Length": "0"})
        m = _RANGE.match(req.headers.get("range", ""))
        if m is None:
            return http_reply("200 OK", {"Content-Length": str(SIZE)}, DATA)
        a, b = int(m.group(1)), int(m.group(2))
        body = DATA[a : b + 1]
        headers = [("Content-Length", str(len(body)))]
        cr = self.content_range(a, b)
        if cr is not None:
            headers.append(("Content-Range", cr))
        return http_reply("206 Partial Content", headers, body)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[RawServer, list[Case]]]:
    holder = [Case()]
    with RawServer(lambda req: holder[0](req)) as srv:
        yield srv, holder


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "source.bin"
    path.write_bytes(DATA)
    return path


_counter = itertools.count()


def attempt(url: str, base: Path, source: Path, *, dl=None, again: bool = False):
    """Download once (twice with `again`), with `dl` or a new Downloader; returns
    (outcome, error, dest)."""
    dest = base / f"ex-{next(_counter)}" / "out.bin"
    dest.parent.mkdir(parents=True)
    error: BaseException | None = None
    for _ in range(2 if again else 1):
        try:
            if dl is not None:
                dl.download(url, str(dest))
            else:
                with objget.Downloader(config=CONFIG) as own:
                    own.download(url, str(dest))
            return "ok", None, dest
        except objget.DownloadError as exc:
            error = exc
            assert not _CONTROL.search(str(exc)), f"control characters in {str(exc)!r}"
            assert dest_wrong_bytes(dest, source) == 0
            assert ckpt_lies(dest, source) == 0
    return "typed", error, dest


def record(summary, row: str, outcome: str, dest: Path, source: Path) -> None:
    correct = outcome == "ok" and same(dest, source)
    summary.trial(
        row, correct=correct, typed=outcome == "typed", wrong_bytes=dest_wrong_bytes(dest, source)
    )
    assert outcome == "typed" or correct


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "database": None,
}

TOTALS = [str(SIZE), "*", str(SIZE + 1), str(2**63), str(2**64), "-1"]
shifted = st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.sampled_from(TOTALS))
CONTENT_RANGES = st.one_of(
    shifted.map(lambda t: lambda a, b: f"bytes {a + t[0]}-{b + t[1]}/{t[2]}"),
    LATIN1.map(lambda text: lambda a, b: text),
    st.just(lambda a, b: None),
    st.just(lambda a, b: f"bytes {a}-{b}/{SIZE}  "),
    st.just(lambda a, b: f"bytes */{SIZE}"),
    st.just(lambda a, b: f"BYTES {a}-{b}/{SIZE}"),
    st.just(lambda a, b: f"bytes {'0' * 30}{a}-{b}/{SIZE}"),
)


def test_fuzzed_content_range(server, source, tmp_path, summary, trials):
    srv, holder = server

    @settings(max_examples=trials(40, 400), **SETTINGS)
    @given(cr=CONTENT_RANGES)
    def check(cr) -> None:
        case = Case()
        case.head = [("Content-Length", str(SIZE)), ("ETag", '"v1"')]
        case.content_range = cr
        holder[0] = case
        outcome, _, dest = attempt(f"{srv.url}/o.bin", tmp_path, source)
        record(summary, "bad input: fuzzed Content-Range", outcome, dest, source)

    check()


def test_fuzzed_etag_survives_the_checkpoint(server, source, tmp_path, summary, trials):
    srv, holder = server

    @settings(max_examples=trials(25, 300), **SETTINGS)
    @given(etag=LATIN1)
    def check(etag: str) -> None:
        case = Case()
        case.head = [("Content-Length", str(SIZE)), ("ETag", etag)]
        case.etag = etag.strip()
        # the first GET breaks off: the second run must resume from a checkpoint holding it
        broken = {"Content-Length": "65536", "Content-Range": f"bytes 0-65535/{SIZE}"}
        case.first_get = http_reply("206 Partial Content", broken, DATA[:1000])
        holder[0] = case
        outcome, _, dest = attempt(f"{srv.url}/o.bin", tmp_path, source, again=True)
        record(summary, "bad input: fuzzed ETag (through a checkpoint)", outcome, dest, source)

    check()


def _http_date(dt: datetime) -> str:
    return email.utils.format_datetime(dt.replace(tzinfo=timezone.utc), usegmt=True)


RETRY_AFTER = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    LATIN1,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(_http_date),
    st.just("Fri, 31 Dec 99999 23:59:59 GMT"),
    st.just("nan"),
    st.just("1e999"),
)


def test_fuzzed_retry_after(server, source, tmp_path, summary, trials):
    srv, holder = server

    @settings(max_examples=trials(30, 300), **SETTINGS)
    @given(value=RETRY_AFTER, status=st.sampled_from(["503 Service Unavailable", "429 Slow Down"]))
    def check(value: str, status: str) -> None:
        case = Case()
        case.head = [("Content-Length", str(SIZE)), ("ETag", '"v1"')]
        case.first_get = http_reply(status, {"Retry-After": value, "Content-Length": "0"})
        holder[0] = case
        outcome, error, dest = attempt(f"{srv.url}/o.bin", tmp_path, source)
        record(summary, "bad input: fuzzed Retry-After (429/503)", outcome, dest, source)
        assert outcome == "ok", error  # one retryable answer, then the bytes

    check()


def _xml(code: str, message: str, rid: str) -> bytes:
    text = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message>"
    text += f"<RequestId>{rid}</RequestId><EC>0003-0000</EC></Error>"
    return text.encode("utf-8", "replace")


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {n} "{("&" + p + ";") * 10}">'.encode()
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + b"]><Error><Code>&i;</Code></Error>"
)
ERROR_BODIES = st.one_of(
    st.builds(_xml, st.text(max_size=40), st.text(max_size=200), st.text(max_size=40)),
    st.builds(_xml, LATIN1, LATIN1, LATIN1),
    st.binary(max_size=400),
    st.just(_LAUGHS),
    st.just(b"<Error>" * 5000),
    st.just(b"<Error><Message>&#27;]0;owned&#7;&#27;[2J</Message></Error>"),
)
STATUSES = [
    "400 Bad Request",
    "403 Forbidden",
    "404 Not Found",
    "409 Conflict",
    "500 Internal Server Error",
    "503 Slow Down",
]


@pytest.mark.parametrize("scheme", ["s3", "oss"])
def test_fuzzed_error_bodies(server, source, tmp_path, summary, trials, scheme, monkeypatch):
    srv, holder = server
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OSS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    options = objget.BackendOptions(endpoint=srv.url, anonymous=True, region="us-east-1")

    @settings(max_examples=trials(40, 300), **SETTINGS)
    @given(body=ERROR_BODIES, status=st.sampled_from(STATUSES))
    def check(body: bytes, status: str) -> None:
        case = Case()
        headers = {"Content-Length": str(len(body)), "Content-Type": "application/xml"}
        case.error = http_reply(status, headers, body)
        holder[0] = case
        outcome, error, dest = attempt(f"{scheme}://bucket/key.bin", tmp_path, source, dl=dl)
        assert outcome == "typed"
        assert isinstance(
            error, (objget.RemoteError, objget.TransportError, objget.RetriesExhausted)
        ), repr(error)
        assert len(str(error)) < 4000
        record(summary, f"bad input: fuzzed {scheme.upper()} error bodies", outcome, dest, source)

    with objget.Downloader(config=CONFIG, options=options) as dl:
        check()


ABSURD = [
    "-5",
    str(2**63),
    str(2**63 - 1),
    str(2**64 + 1),
    "1e9",
    "0x10",
    " 12 ",
    "9" * 40,
    "+5",
    "١٢٣",
    "5, 5",
]


@pytest.mark.parametrize("length", ABSURD)
def test_absurd_sizes(server, source, tmp_path, summary, length):
    srv, holder = server
    case = Case()
    case.head = [("Content-Length", length), ("ETag", '"v1"')]
    case.content_range = lambda a, b: f"bytes {a}-{b}/{length.strip()}"
    holder[0] = case
    try:
        outcome, _, dest = attempt(f"{srv.url}/o.bin", tmp_path, source)
    except OSError as exc:  # e.g. ENOSPC for 8 EiB: a local error with a message is fine
        outcome, dest = "typed", None
        assert "space" in str(exc), exc
    big = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_blocks * 512 > 64 << 20]
    assert not big, f"an absurd size filled the disk: {big}"
    row = "bad input: absurd sizes (negative, > 2^63)"
    if outcome == "ok":  # the server's claim was usable: the file is what it claimed
        ascii_int = length.strip().isascii() and length.strip().isdigit()
        claimed = int(length) if ascii_int and int(length) < SIZE else SIZE
        correct = dest.read_bytes() == DATA[:claimed]
        summary.trial(row, correct=correct, wrong_bytes=0 if correct else claimed)
        assert correct, length
    else:
        summary.trial(row, typed=True)
