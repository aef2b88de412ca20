"""A plain download imports no `typing` (issue 16, start-up: ~11 M instructions of an 8 MiB
download's ~245 M, and ~2 M more for the Protocol classes it made): objget's modules on that
path name `typing`'s things for the type checker only (`TYPE_CHECKING = False`, which mypy
reads as True), the Protocols live in `backends/_protocols.py` and `integrity/_protocols.py`,
given to a user at first access, and the engine asks what an `isinstance` of them would
(`_base.is_abortable`, `part_layout_of`, `answer_checksums_of`) without the classes."""

from __future__ import annotations

import pytest

from objget.backends import _base

from .test_import_cost import _loaded_after, _quiet_download, _served


def test_a_quiet_download_imports_no_typing(tmp_path):
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)")
    assert "typing" not in loaded


def test_a_ranged_download_with_write_behind_imports_no_typing(tmp_path):
    (tmp_path / "blob").write_bytes(b"t" * (3 << 20))
    body = f"""
        code = run(["-q", url_of("blob"), {str(tmp_path / "out")!r}])
        assert code == 0, code
        """
    loaded = _loaded_after(_served(tmp_path, body, ranges=True))
    assert (tmp_path / "out").read_bytes() == b"t" * (3 << 20)
    assert "objget.engine._engine" in loaded and "objget.engine._verify" in loaded
    assert "typing" not in loaded


def test_import_objget_cli_imports_no_typing():
    assert "typing" not in _loaded_after("import objget.cli")


@pytest.mark.parametrize(
    "module",
    ["objget.backends", "objget.backends._base", "objget.integrity", "objget.integrity.checks"],
)
def test_the_protocols_are_still_there(module):
    import importlib

    from objget.backends import _protocols
    from objget.integrity import _protocols as checkers

    mod = importlib.import_module(module)
    for name in ("Checksummer", "FileCheck"):
        if name in mod.__all__:
            assert getattr(mod, name) is getattr(checkers, name)
    for name in ("Abortable", "AnswerChecksums", "Backend", "Lister", "PartLayout", "RangeBody"):
        if name in mod.__all__:
            assert getattr(mod, name) is getattr(_protocols, name)
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


class _Plain:
    pass


class _Abortable:
    def abort(self) -> None:
        pass


class _Layout:
    def part_sizes(self, key, meta):
        return None


class _Answers:
    def answer_checksums(self, headers):
        return {}


class _NoneAttributes:
    abort = None
    part_sizes = None
    answer_checksums = None


@pytest.mark.parametrize("cls", [_Plain, _Abortable, _Layout, _Answers, _NoneAttributes])
def test_the_engine_asks_what_isinstance_would(cls):
    from objget.backends import Abortable, AnswerChecksums, PartLayout

    obj = cls()
    assert _base.is_abortable(obj) == isinstance(obj, Abortable)
    assert (_base.part_layout_of(obj) is obj) == isinstance(obj, PartLayout)
    _base._ANSWERS.pop(cls, None)
    assert (_base.answer_checksums_of(obj) is obj) == isinstance(obj, AnswerChecksums)
