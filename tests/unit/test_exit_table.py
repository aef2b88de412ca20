"""One error-to-exit table: every error class in the tree, plus the builtins the command handles,
gives the same exit code (and message) from the single-object command and the batch command,
and a failed batch object's `error_kind` maps to that same code. docs/errors.md says so too."""

from __future__ import annotations

import ast
import errno
import re
from pathlib import Path

import pytest

from objget import cli
from objget._exceptions import (
    AccessDenied,
    CheckpointError,
    DownloadError,
    IntegrityError,
    LockedError,
    ObjectChanged,
    ObjectNotFound,
    RangeNotSupported,
    RemoteError,
    RetriesExhausted,
    TLSError,
    TransportError,
    UnsafePath,
)
from objget._exit import KIND_EXIT, error_kind, exit_code
from objget.cli import _cli_batch
from objget.engine import _downloader

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

# the decision for every class of the tree: a new class fails the test until it is added here
TREE_CODES: dict[type[DownloadError], int] = {
    DownloadError: 6,
    RemoteError: 3,
    ObjectNotFound: 3,
    AccessDenied: 3,
    ObjectChanged: 3,
    RangeNotSupported: 3,
    TransportError: 5,
    TLSError: 5,
    RetriesExhausted: 5,
    IntegrityError: 4,
    CheckpointError: 6,
    LockedError: 7,
    UnsafePath: 2,
}


def _subclasses(cls: type[DownloadError]) -> set[type[DownloadError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def _make(cls: type[DownloadError]) -> DownloadError:
    if issubclass(cls, RetriesExhausted):
        return cls("gave up after 3 attempts", attempts=3, last_error=TransportError("reset"))
    if issubclass(cls, IntegrityError):
        return cls("crc64 mismatch", algorithm="crc64", expected="1", actual="2")
    return cls(f"{cls.__name__} happened", source="http://127.0.0.1:9/f.bin")


CASES: list[tuple[str, BaseException, int]] = [
    *((cls.__name__, _make(cls), code) for cls, code in TREE_CODES.items()),
    ("OSError", OSError(errno.ENOSPC, "No space left on device", "f.bin"), 6),
    ("PermissionError", PermissionError(errno.EACCES, "Permission denied", "f.bin"), 6),
    ("IsADirectoryError", IsADirectoryError(errno.EISDIR, "Is a directory", "f.bin"), 6),
    ("ValueError", ValueError("unsupported URL scheme 'ftp'"), 2),
    ("ImportError", ModuleNotFoundError("No module named 'botocore'", name="botocore"), 2),
    ("KeyboardInterrupt", KeyboardInterrupt(), 130),
]


def test_every_class_of_the_tree_has_a_decided_exit_code():
    assert _subclasses(DownloadError) == set(TREE_CODES)


def _invoke(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    """The command run in-process: (exit code, stdout + stderr)."""
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out + err


def _single(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    exc: BaseException,
) -> tuple[int, str]:
    class Failing:
        def __init__(self, **_: object) -> None:
            pass

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def download(self, *_: object, **__: object) -> None:
            raise exc

    monkeypatch.setattr(_downloader, "Downloader", Failing)  # cli imports it when it runs
    # port 9 (discard) on loopback: nothing is asked of it, the downloader is the fake above
    args = ["--quiet", "http://127.0.0.1:9/f.bin", str(tmp_path / "f.bin")]
    return _invoke(capsys, args)


def _batch(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    exc: BaseException,
) -> tuple[int, str]:
    def failing(*_: object, **__: object) -> None:
        raise exc

    monkeypatch.setattr(_cli_batch, "_run", failing)
    args = ["--quiet", "--recursive", "http://127.0.0.1:9/p/", str(tmp_path)]
    return _invoke(capsys, args)


@pytest.mark.parametrize(("exc", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_single_and_batch_commands_and_error_kinds_agree(monkeypatch, capsys, tmp_path, exc, code):
    single = _single(monkeypatch, capsys, tmp_path, exc)
    batch = _batch(monkeypatch, capsys, tmp_path, exc)
    assert single[0] == code, single
    assert batch[0] == code, batch
    assert single[1] == batch[1]  # the same line, e.g. "progress is saved" for a network error
    assert single[1].startswith("objget: ")
    assert KIND_EXIT[error_kind(exc)] == code, error_kind(exc)
    assert exit_code(exc) == code


def test_a_refused_certificate_does_not_promise_a_resume(monkeypatch, capsys, tmp_path):
    _, tls = _single(monkeypatch, capsys, tmp_path, _make(TLSError))
    _, reset = _single(monkeypatch, capsys, tmp_path, _make(TransportError))
    assert "progress is saved" not in tls
    assert "progress is saved" in reset


def test_an_import_error_that_is_not_a_missing_extra_stays_a_bug(monkeypatch, capsys, tmp_path):
    bug = ImportError("cannot import name 'nope' from 'objget'")
    for form in (_single, _batch):
        with pytest.raises(ImportError) as raised:  # the traceback is kept: a bug, not exit 2
            form(monkeypatch, capsys, tmp_path, bug)
        assert raised.value is bug


def _docs_rows(heading: str) -> list[list[str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_docs_exit_table_matches():
    names = {name: (exc, code) for name, exc, code in CASES}
    checked = set()
    for row in _docs_rows("## Exit codes")[1:]:
        if not row[0].isdigit():
            continue  # the error-kind table below it
        for name in re.findall(r"`(\w+)`", row[2]):
            if name in names:
                assert exit_code(names[name][0]) == int(row[0]), (name, row[0])
                checked.add(name)
    assert checked == {
        "ValueError", "ImportError", "UnsafePath", "RemoteError", "IntegrityError",
        "TransportError", "RetriesExhausted", "TLSError", "OSError", "CheckpointError",
        "LockedError", "KeyboardInterrupt",
    }  # fmt: skip


def test_the_docs_error_kind_table_matches():
    rows = [r for r in _docs_rows("## Exit codes") if r[0].startswith("`") and r[2].isdigit()]
    documented = {r[0].strip("`"): int(r[2]) for r in rows}
    # `interrupted` stops the whole command; no object fails with it
    assert documented == {k: v for k, v in KIND_EXIT.items() if k != "interrupted"}
    names = {name: exc for name, exc, _ in CASES}
    for kind, raised_as, _ in rows:
        for name in re.findall(r"`(\w+)`", raised_as):
            assert error_kind(names[name]) == kind.strip("`"), (name, kind)


def test_every_error_kind_written_in_the_source_is_in_the_table():
    """Kinds set by hand (`error_kind="integrity"`) are kinds of the table."""
    src = Path(__file__).resolve().parents[2] / "src" / "objget"
    written = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "error_kind":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    written.add((path.name, node.value.value))
    assert written, "the check found no kinds: has the keyword changed?"
    assert {(name, kind) for name, kind in written if kind not in KIND_EXIT} == set()
