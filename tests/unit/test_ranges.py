from hypothesis import given
from hypothesis import strategies as st

from objget._models import ByteRange
from objget._ranges import check_range_answer, parse_content_range, range_header


@given(st.integers(0, 2**62), st.integers(1, 2**40), st.integers(0, 2**40))
def test_content_range_roundtrip(start, length, extra):
    rng = ByteRange(start, start + length)
    total = rng.stop + extra
    text = range_header(rng).replace("bytes=", "bytes ") + f"/{total}"
    parsed = parse_content_range(text)
    assert parsed is not None
    assert parsed.range == rng
    assert parsed.total == total


@given(st.text(max_size=80))
def test_parse_never_raises(text):
    parse_content_range(text)


@given(st.binary(max_size=60))
def test_parse_bytes_never_raises(data):
    parse_content_range(data.decode("latin-1"))


def test_parse_rejects_bad_forms():
    for bad in [
        "bytes 5-4/10",
        "bytes 0-10/10",
        "bytes -1-3/10",
        "items 0-1/2",
        "bytes 0-1",
        "bytes 99999999999999999999-1/2",
        "bytes 0-1/x",
        "",
    ]:
        assert parse_content_range(bad) is None, bad
    assert parse_content_range("bytes 0-1/*").total is None


def test_check_range_answer():
    asked = ByteRange(100, 200)
    ok = check_range_answer(
        asked=asked, size=1000, status=206, content_range="bytes 100-199/1000", content_length=100
    )
    assert ok.ok
    cases = [
        (200, None, 1000, "status 200"),
        (206, "bytes 101-200/1000", 100, "does not match"),
        (206, "bytes 100-199/999", 100, "differs from object size"),
        (206, "bytes 100-199/1000", 101, "Content-Length"),
        (206, None, 100, "missing or malformed"),
    ]
    for status, cr, cl, why in cases:
        res = check_range_answer(
            asked=asked, size=1000, status=status, content_range=cr, content_length=cl
        )
        assert not res.ok
        assert why in res.reason
