"""Key → path mapping: every refusal, collisions, and writes that cannot leave the directory."""

import os
import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget.batch import UnsafePath
from objget.engine._dirs import ParentMaker
from objget.many._batch_models import ObjectResult
from objget.many._batch_sources import (
    Collisions,
    Planned,
    is_directory_marker,
    relative_path,
    relative_to_prefix,
)
from objget.testing import MemoryBackend


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("", "empty"),
        ("a/\x00b", "NUL"),
        ("/etc/passwd", "absolute"),
        ("../evil", r"'\.\.'"),
        ("a/../../evil", r"'\.\.'"),
        ("a/./b", "'.'"),
        ("a//b", "empty"),
        ("dir/", "ends in '/'"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_unsafe_relative_paths_are_refused_with_a_reason(rel, why):
    with pytest.raises(UnsafePath, match=why):
        relative_path(rel)


MARKED = [
    "a/b.objget-part",
    "b.objget-ckpt",
    "b.objget-ckpt.tmp",
    "b.objget-ckpt-live",
    "b.objget-lock",
    "b.objget-r0.ckpt",
    "d/b.objget-r8388608.ckpt",
    "b.objget-r0.lock",
    ".objget-batch.db",
    "sub/.objget-batch.db",
    ".objget-batch.db-wal",
    ".objget-batch.db-journal",
    ".objget-batch.lock",
    "b.objget-ckpt.tmp-123",
    "a.objget-part/inside",
    "x/b.OBJGET-PART",
    "b.objget-anything-new",
]


@pytest.mark.parametrize("rel", MARKED)
def test_every_name_with_the_side_file_marker_is_refused(rel):
    """One rule: any path component containing `.objget-` (any case) is objget's."""
    with pytest.raises(UnsafePath, match=r"contains '\.objget-', the marker of objget"):
        relative_path(rel)


def test_every_side_file_objget_makes_carries_the_marker():
    """The rule covers the single-object download's side files, a Ray range's and the
    batch journal's: a key can never name one of them."""
    from objget.engine import _checkpoint as ck
    from objget.engine._downloader import carries_marker
    from objget.engine._windows import range_paths
    from objget.many._batch_journal import JOURNAL_NAMES, LOCK_NAME

    single = ck.Paths.beside("dir/x.bin")
    ray = range_paths("dir/x.bin", 8 * 1024 * 1024)
    names = [
        single.part, single.checkpoint, single.live, f"{single.checkpoint}.tmp", single.lock,
        ray.checkpoint, ray.lock, f"{ray.checkpoint}.tmp", *JOURNAL_NAMES, LOCK_NAME,
        f"{JOURNAL_NAMES[0]}-journal",
    ]  # fmt: skip
    for name in names:
        assert carries_marker(os.path.basename(name)), name
    assert not carries_marker("x.bin") and not carries_marker("objget-notes.txt")


@pytest.mark.parametrize(
    "rel",
    ["a", "a b/ü ñ.txt", "x%41", "plus+x", "..a", "a..", "sub/.hidden", "objget-x", "a.objget"],
)
def test_ordinary_names_pass(rel):
    assert relative_path(rel) == rel


def test_prefix_mapping():
    assert relative_to_prefix("p/a/x/y", "p/a/") == "x/y"
    assert relative_to_prefix("p/data/x", "p/da") == "data/x"
    assert relative_to_prefix("top", "") == "top"
    with pytest.raises(UnsafePath, match="not under the prefix"):
        relative_to_prefix("q/x", "p/")


def test_directory_markers():
    assert is_directory_marker("p/dir/", 0)
    assert not is_directory_marker("p/dir/", 5)
    assert not is_directory_marker("p/file", 0)


def test_collisions_refuse_the_file_a_directory_needs_and_duplicates():
    store = MemoryBackend({})
    rule = Collisions()
    out = []
    for rel in ["a", "a/b", "c/d", "c/d", "e"]:
        out += rule.add(Planned(source=rel, rel=rel, backend=store, key=rel, size=1, etag="e"))
    out += rule.flush()
    refused = {o.source: o.error for o in out if isinstance(o, ObjectResult)}
    assert [o.rel for o in out if isinstance(o, Planned)] == ["a/b", "c/d", "e"]
    assert set(refused) == {"a", "c/d"}
    assert "directory" in refused["a"] and "same destination" in refused["c/d"]


names = st.text(alphabet=st.sampled_from(list("ab./\x00ü ")), min_size=1, max_size=12)


@given(names)
def test_any_accepted_path_stays_inside_the_directory(rel):
    try:
        relative_path(rel)
    except UnsafePath:
        return
    joined = posixpath.normpath(posixpath.join("/root/dir", rel))
    assert joined.startswith("/root/dir/") and joined == f"/root/dir/{rel}"


def test_parent_maker_refuses_a_symlinked_directory(tmp_path):
    root = tmp_path / "dest"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    maker = ParentMaker(str(root))
    with pytest.raises(UnsafePath, match="symlink"):
        maker.path("link/x")
    assert list(outside.iterdir()) == []
    assert maker.path("real/deep/x") == os.path.join(os.path.realpath(root), "real/deep/x")
    assert (root / "real" / "deep").is_dir()


def test_parent_maker_refuses_a_file_in_the_way_and_a_directory_at_the_destination(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    (tmp_path / "d").mkdir()
    maker = ParentMaker(str(tmp_path))
    with pytest.raises(UnsafePath, match="not a directory"):
        maker.path("f/x")
    with pytest.raises(UnsafePath, match="directory already exists"):
        maker.path("d")


def test_parent_maker_remembers_what_a_directory_held_at_its_first_visit(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_bytes(b"x")
    (tmp_path / "old" / "y.objget-part").write_bytes(b"y")
    maker = ParentMaker(str(tmp_path))
    assert maker.listed("old/x") is None  # not visited yet
    maker.path("old/x")
    assert maker.listed("old/z") == {"x", "y.objget-part"}
    maker.path("new/deeper/z")
    assert maker.listed("new/deeper/q") == frozenset()  # made by the maker: empty
    maker.path("top")
    assert "old" in maker.listed("other")  # the root itself, listed once
