"""The collision rule applied as the listing streams in (`Collisions`) decides exactly as a
rule over the whole listing (`refuse_collisions` below, the oracle) for a listing in key
order, and lets an object go as soon as no later key can need its name as a directory."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from objget.many._batch_models import ObjectResult
from objget.many._batch_sources import Collisions, Planned
from objget.testing import MemoryBackend

_BACKEND = MemoryBackend({})


def planned(rel: str) -> Planned:
    return Planned(source=f"mem://{rel}", rel=rel, backend=_BACKEND, key=rel, size=1, etag="e")


def refuse_collisions(rels: list[str]) -> dict[str, str]:
    """Over every name at once: `{rel: reason}` for a file that another key needs as a
    directory and for a repeated destination (all but the first)."""
    seen: set[str] = set()
    dirs: set[str] = set()
    refused: dict[str, str] = {}
    for rel in rels:
        if rel in seen:
            refused[rel] = "another object in this batch has the same destination"
            continue
        seen.add(rel)
        parts = rel.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    refused.update({rel: "it collides with a directory" for rel in seen if rel in dirs})
    return refused


def whole(rels: list[str]) -> list[str]:
    """What `plan` keeps (in order): its rule over every name at once."""
    reasons = refuse_collisions(rels)
    kept: list[str] = []
    for rel in rels:
        reason = reasons.get(rel)
        if reason is None or (reason.startswith("another") and rel not in kept):
            kept.append(rel)
    return kept


def streamed(rels: list[str]) -> tuple[list[str], int]:
    rule = Collisions()
    out: list[Planned | ObjectResult] = []
    for rel in rels:
        out.extend(rule.add(planned(rel)))
    out.extend(rule.flush())
    kept = [x.rel for x in out if isinstance(x, Planned)]
    refused = sum(1 for x in out if isinstance(x, ObjectResult))
    return kept, refused


names = st.lists(
    st.lists(st.sampled_from(["a", "b", "a!", "a.", "ab"]), min_size=1, max_size=3).map("/".join),
    max_size=12,
)


@given(names)
def test_streamed_decides_as_the_whole_listing_for_keys_in_order(rels):
    rels = sorted(rels)
    kept, refused = streamed(rels)
    assert sorted(kept) == sorted(whole(rels))
    assert len(kept) + refused == len(rels)


def test_an_object_is_let_go_once_the_listing_passed_its_subtree():
    rule = Collisions()
    assert rule.add(planned("a")) == []  # "a/..." may still come
    assert rule.add(planned("a!b")) == []  # before "a/" in key order: "a" still held
    out = rule.add(planned("b"))  # past "a/...": both go
    assert sorted(x.rel for x in out if isinstance(x, Planned)) == ["a", "a!b"]


def test_a_file_needed_as_a_directory_is_refused_and_the_key_below_kept():
    rule = Collisions()
    assert rule.add(planned("a")) == []
    out = rule.add(planned("a/b"))
    assert len(out) == 1 and isinstance(out[0], ObjectResult)
    assert out[0].error_kind == "unsafe-path" and "directory" in (out[0].error or "")
    assert [x.rel for x in rule.flush() if isinstance(x, Planned)] == ["a/b"]


def test_a_later_source_needing_a_let_go_file_as_a_directory_is_refused():
    rule = Collisions()
    rule.add(planned("a"))
    assert [x.rel for x in rule.flush() if isinstance(x, Planned)] == ["a"]  # prefix ended
    out = rule.add(planned("a/b"))  # e.g. a manifest entry afterwards
    assert len(out) == 1 and isinstance(out[0], ObjectResult)
    assert "'a' is a file" in (out[0].error or "")
