"""ListObjectsV2 page parsing and pagination (S3 and OSS flavours), on bytes."""

from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget import RemoteError
from objget.backends._oss_list import list_oss_objects, parse_oss_page
from objget.backends._s3_list import ListedObject, list_pages, parse_list_page

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def page(objs, *, truncated=False, token=None, ns=NS, encoded=True, enc=quote_plus):
    items = "".join(
        f"<Contents><Key>{enc(k) if encoded else k}</Key><LastModified>2024-01-01T00:00:00.000Z"
        f"</LastModified><ETag>&quot;{e}&quot;</ETag><Size>{s}</Size></Contents>"
        for k, s, e in objs
    )
    tok = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    et = "<EncodingType>url</EncodingType>" if encoded else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult{ns}><Name>b</Name>'
        f"<Prefix>p/</Prefix>{et}<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        f"{tok}{items}</ListBucketResult>"
    ).encode()


def test_s3_page_with_namespace_and_form_encoding():
    p = parse_list_page(page([("p/a b+c.txt", 5, "abc"), ("p/ü/ñ", 0, "d41d")]))
    when = "2024-01-01T00:00:00.000Z"  # kept as the listing writes it (mtime of the files)
    assert p.objects == (
        ListedObject("p/a b+c.txt", 5, '"abc"', when),
        ListedObject("p/ü/ñ", 0, '"d41d"', when),
    )
    assert not p.truncated and p.next_token is None


def test_not_encoded_keys_are_taken_literally():
    p = parse_list_page(page([("p/a%20b", 1, "x")], encoded=False))
    assert p.objects[0].key == "p/a%20b"


def test_oss_page_percent_encoding_and_token():
    raw = page([("p/a+b c", 3, "E")], truncated=True, token="p%2Fnext", ns="", enc=quote)
    p = parse_oss_page(raw)
    assert p.objects[0].key == "p/a+b c"
    assert p.truncated and p.next_token == "p/next"


@pytest.mark.parametrize(
    "raw",
    [
        b"not xml",
        b"<Error><Code>AccessDenied</Code></Error>",
        b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
    ],
)
def test_bad_pages_are_value_errors(raw):
    with pytest.raises(ValueError):
        parse_list_page(raw)


def test_pagination_follows_tokens_and_sends_parameters():
    pages = {
        None: page([("p/1", 1, "a")], truncated=True, token="T1"),
        "T1": page([("p/2", 2, "b")], truncated=True, token="T2"),
        "T2": page([("p/3", 3, "c")]),
    }
    sent = []

    def send(params):
        sent.append(dict(params))
        return pages[params.get("continuation-token")]

    got = list(list_pages(send, "p/", start_after="p/0", source="s3://b/p/"))
    assert [o.key for o in got] == ["p/1", "p/2", "p/3"]
    assert sent[0] == {
        "list-type": "2",
        "prefix": "p/",
        "max-keys": "100",
        "encoding-type": "url",
        "start-after": "p/0",
    }
    assert sent[1]["continuation-token"] == "T1" and "start-after" not in sent[1]
    # the first page is small (the downloads start on it), the others full
    assert [s["max-keys"] for s in sent] == ["100", "1000", "1000"]


@pytest.mark.parametrize("token", [None, "SAME"])
def test_truncated_without_a_new_token_is_an_error_not_a_loop(token):
    def send(params):
        return page([("p/1", 1, "a")], truncated=True, token=token)

    with pytest.raises(RemoteError, match="truncated"):
        list(list_pages(send, "p/", source="s3://b/p/"))


def test_oss_listing_uses_percent_decoding():
    def send(params):
        return page([("p/x+y", 1, "a")], ns="", enc=quote)

    assert [o.key for o in list_oss_objects(send, "p/", source="oss://b/p/")] == ["p/x+y"]


def test_unparsable_answer_is_a_remote_error():
    with pytest.raises(RemoteError, match="unusable listing"):
        list(list_pages(lambda p: b"<html>", "p/", source="s3://b/p/"))


keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


@given(st.lists(keys, min_size=1, max_size=5))
def test_any_key_roundtrips_through_url_encoding(names):
    assert [o.key for o in parse_list_page(page([(k, 1, "e") for k in names])).objects] == names
    oss = parse_oss_page(page([(k, 1, "e") for k in names], enc=quote))
    assert [o.key for o in oss.objects] == names
