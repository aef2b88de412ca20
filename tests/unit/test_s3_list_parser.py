"""The listing's tight XML parser (`_s3_list._s3_page`) against ElementTree (`_tree_page`):
whatever page the tight parser reads, ElementTree reads the same way; what it does not read
(None), ElementTree decides, so no page is taken that ElementTree refuses, or read otherwise.
Pages are generated well-formed (keys and ETags with every character that must be escaped,
escaped every way XML allows, whitespace, extra and empty elements), as a soup of XML pieces,
and as well-formed pages with one piece added or removed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.backends._s3_list import _s3_page, _tree_page, parse_list_page

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
DECLS = ('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-8"?>',
         '<?xml version="1.0"?>', "",
         "<?xml version='1.0'?>", '\ufeff<?xml version="1.0" encoding="UTF-8"?>', "\n")  # fmt: skip
SPACE = st.sampled_from(["", "", "", " ", "\n", "\n  ", "\t", "\n", "\r\n"])
RAW = "ab<>&\"']]\r\n\t\x01\x7f é€\ufffe\U0001f600%+/"


@st.composite
def escaped(draw: st.DrawFn) -> str:
    """Text with every character XML must or may escape, each written one of its ways."""
    out = []
    for ch in draw(st.text(alphabet=RAW, max_size=12)):
        ways = [f"&#{ord(ch)};", f"&#x{ord(ch):x};", f"&#X{ord(ch):x};"]
        ways += {"&": ["&amp;"], "<": ["&lt;"], ">": ["&gt;", ">"], '"': ["&quot;", '"'],
                 "'": ["&apos;", "'"]}.get(ch, [ch] * 3)  # fmt: skip
        if ch in "\r\x01\ufffe" and draw(st.integers(0, 3)):
            ways = [f"&#{ord(ch)};"]  # mostly escaped: raw, the page is ElementTree's
        out.append(draw(st.sampled_from(ways)))
    return "".join(out)


@st.composite
def element(draw: st.DrawFn, name: str) -> str:
    if draw(st.integers(0, 9)) == 0:
        return f"<{name}/>"
    inner = draw(escaped())
    if draw(st.integers(0, 7)) == 0:  # a child inside: the text is what comes before it
        inner += f"<X>{draw(escaped())}</X>{draw(escaped())}"
    return f"<{name}>{inner}</{name}>"


@st.composite
def contents(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(["Key", "Size", "ETag", "LastModified", "Owner",
                                           "StorageClass", "Key"]), max_size=7))  # fmt: skip
    parts = []
    for n in names:
        if n == "Size" and draw(st.booleans()):
            parts.append(f"<Size>{draw(SPACE)}{draw(st.integers(0, 10**12))}</Size>")
        elif n == "Owner":
            parts.append(f"<Owner><ID>{draw(escaped())}</ID><Key>in</Key></Owner>")
        else:
            parts.append(draw(element(n)))
        parts.append(draw(SPACE))
    return f"<Contents>{''.join(parts)}</Contents>"


KINDS = ["Contents", "Contents", "EncodingType", "IsTruncated", "NextContinuationToken", "Name",
         "CommonPrefixes"]  # fmt: skip


@st.composite
def page(draw: st.DrawFn) -> str:
    children = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(KINDS))
        if kind == "Contents":
            children.append(draw(contents()))
        elif kind == "EncodingType" and draw(st.booleans()):
            children.append("<EncodingType>url</EncodingType>")
        elif kind == "IsTruncated" and draw(st.booleans()):
            children.append(
                f"<IsTruncated>{draw(st.sampled_from(['true', 'false']))}</IsTruncated>"
            )
        elif kind == "CommonPrefixes":
            children.append(f"<CommonPrefixes><Prefix>{draw(escaped())}</Prefix></CommonPrefixes>")
        else:
            children.append(draw(element(kind)))
        children.append(draw(SPACE))
    root = draw(st.sampled_from(["ListBucketResult", "ListBucketResult", "Error"]))
    ns = draw(st.sampled_from([NS, NS, "", ' xmlns=""', ' xmlns:s3="x"', ' a="1"']))
    return (f"{draw(st.sampled_from(DECLS))}{draw(SPACE)}<{root}{ns}>{draw(SPACE)}"
            f"{''.join(children)}</{root}>{draw(SPACE)}")  # fmt: skip


PIECES = ["<Contents>", "</Contents>", "<Key>", "</Key>", "<Size>", "</Size>", "1", "a", " ",
          "<ETag/>", "&amp;", "&#34;", "&#0;", "&#x110000;", "&bogus;", "&", "]]>", "\r", "\n",
          "<!-- c -->", "<![CDATA[x]]>", "<?pi x?>", "<Key a='1'>", "</ListBucketResult>",
          "<ListBucketResult>", "<s3:Key>", "</Key >", "<Key/>", "</a/>", "\x00", "ü", "<",
          ">", "<!DOCTYPE x>", "<1a>", "\udcff", "&#" + "9" * 5000 + ";", "&#0000065;"]  # fmt: skip


def agree(doc: str) -> None:
    raw = doc.encode("utf-8", "surrogatepass")
    fast = _s3_page(raw)
    if fast is None:
        return
    try:
        slow = _tree_page(raw)
    except ValueError as exc:
        raise AssertionError(f"the tight parser read a page ElementTree refuses: {exc}") from None
    assert fast == slow


@settings(max_examples=400, deadline=None)
@given(page())
def test_well_formed_pages_read_as_by_elementtree(doc):
    agree(doc)


@settings(max_examples=300, deadline=None)
@given(page(), st.lists(st.sampled_from(PIECES), min_size=1, max_size=3), st.data())
def test_pages_with_a_piece_added_or_removed(doc, pieces, data):
    at = data.draw(st.integers(0, len(doc)))
    agree(doc[:at] + "".join(pieces) + doc[at:])
    cut = data.draw(st.integers(0, len(doc)))
    agree(doc[:cut] + doc[cut + data.draw(st.integers(1, 12)) :])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECLS), st.lists(st.sampled_from(PIECES), max_size=30))
def test_soups_of_pieces(decl, pieces):
    agree(f"{decl}<ListBucketResult>{''.join(pieces)}</ListBucketResult>")
    agree(f"{decl}<ListBucketResult>{''.join(pieces)}")


def test_pages_as_stores_write_them_take_the_tight_parser():
    """The pages S3, OSS and SeaweedFS write (Go's encoder escapes `"` as `&#34;`) never
    need ElementTree."""
    seaweed = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult' + NS + "><Name>b</Name>"
        "<Prefix>one/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        "<EncodingType>url</EncodingType><Contents><Key>one%2Fa+b.bin</Key>"
        "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>65536</Size>"
        "<Owner><ID>0</ID></Owner><StorageClass>STANDARD</StorageClass>"
        "<LastModified>2026-12-05T00:31:00Z</LastModified></Contents></ListBucketResult>"
    ).encode()
    aws = seaweed.replace(b"&#34;", b"&quot;").replace(b">\n<", b"><")
    for raw in (seaweed, aws):
        assert _s3_page(raw) is not None
        assert _s3_page(raw) == _tree_page(raw)
        (obj,) = parse_list_page(raw).objects
        assert obj == ("one/a b.bin", 65536, '"5d41402abc4b2a76b9719d911017c592"',
                       "2026-12-05T00:31:00Z")  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<ListBucketResult><Key>&#0;</Key></ListBucketResult>", "not XML"),
        (b"<ListBucketResult><!-- x --></ListBucketResult><x/>", "not XML"),
        (b"<Error><Code>AccessDenied</Code></Error>", "not a <ListBucketResult>"),
        (b"<ListBucketResult>\xff</ListBucketResult>", "not XML"),
    ],
)
def test_what_the_tight_parser_leaves_elementtree_says(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_list_page(raw)


def test_a_large_page_reads_the_same_both_ways():
    """Pages larger than TIGHT_MOST go to ElementTree (faster per key once it is loaded)."""
    from objget.backends._s3_list import TIGHT_MOST

    items = "".join(
        f"<Contents><Key>k%2F{i:05d}</Key><ETag>&#34;e{i}&#34;</ETag><Size>{i}</Size>"
        "<Owner><ID>0</ID><Key>not this</Key></Owner></Contents>"
        for i in range(1000)
    )
    raw = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult{NS}><EncodingType>url'
        f"</EncodingType><IsTruncated>true</IsTruncated><NextContinuationToken>t"
        f"</NextContinuationToken>{items}</ListBucketResult>"
    ).encode()
    assert len(raw) > TIGHT_MOST
    assert _s3_page(raw) == _tree_page(raw)
    got = parse_list_page(raw)
    assert got.objects[7] == (f"k/{7:05d}", 7, '"e7"', None)
    assert len(got.objects) == 1000 and got.truncated and got.next_token == "t"
