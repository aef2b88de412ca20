"""Start-up cost guard, continued (`test_import_cost.py` holds the helpers): what a plain
download no longer loads or builds, each measured with callgrind on an 8 MiB download (issue 16).

- `logging` (~20 M instructions with `traceback`, `string`, `weakref`...): the library logs
  through `objget._log`, which imports nothing until some code has imported `logging`;
- Python's idna codec (`encodings.idna`, `stringprep`, `unicodedata`): getaddrinfo and ssl
  load it for a str host name; objget hands them the (ASCII) name as bytes;
- `json`: the checkpoint codec imports it at its first use (a download that saves no
  checkpoint, such as one from a server without ranges, never needs it);
- value equality (`__eq__`, `__hash__`: two generated methods each, compiled at import) only on
  the records something compares; the others are `eq=False`;
- `encodings.ascii`: the boot id is read as bytes;
- `engine._throttle`: imported by the engine only for a rate limit (the module budget of
  `test_import_cost.py`, 50, holds with `_log.py` added);
- `urllib.parse` (and `ipaddress`, which it imports; ~10 M instructions): a plain URL's
  scheme, host and port are read by `backends/_target.py`, and `redact_url` gives it back
  as it is, without it (`test_target_split.py` holds both to urlsplit's answers);
- `Progress` (a frozen dataclass: its class and six compiled methods, ~2.5 M): made only for
  a listener, so it is defined in `_progress.py`, imported then;
- `compile()`: its first call builds every `ast` node class (~9 M instructions), and a
  `TypeVar` bound by name (`bound="X"`, a `ForwardRef`) called it at import.

Module sets and class lists in a fresh interpreter, not timings.
"""

from __future__ import annotations

import textwrap
from typing import Any

from .test_import_cost import _child, _loaded_after, _matching, _quiet_download, _served

IDNA = ("encodings.idna", "stringprep", "unicodedata")


def test_import_objget_loads_no_logging():
    assert "logging" not in _loaded_after("import objget")


def _library_download(tmp_path: Any) -> list[str]:
    """The modules left loaded by `objget.download` of 100 kB over plain HTTP from a server
    without ranges, in a fresh interpreter that never imports the command."""
    (tmp_path / "blob").write_bytes(b"q" * 100_000)
    body = f"""
        import objget
        objget.download(url_of("blob"), {str(tmp_path / "out")!r})
        """
    script = _served(tmp_path, body)
    script = "\n".join(s for s in script.splitlines() if not s.startswith("from objget.cli "))
    loaded = _loaded_after(script)
    assert (tmp_path / "out").read_bytes() == b"q" * 100_000
    assert "objget.engine._engine" in loaded
    return loaded


def test_a_library_download_imports_no_logging_idna_or_json(tmp_path):
    assert _matching(_library_download(tmp_path), ("logging", *IDNA, "json")) == []


def test_a_quiet_command_download_imports_no_idna_or_json(tmp_path):
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)")
    assert _matching(loaded, (*IDNA, "json")) == []


def test_a_plain_url_is_read_without_urllib_parse(tmp_path):
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)")
    assert _matching(loaded, ("urllib", "ipaddress")) == []
    assert "objget.engine._throttle" not in loaded  # only with a rate limit


# The dataclasses of the plain-HTTP download that compare by value: the public values, and the
# internal ones something compares (Span, Live, LiveTag: the codecs' round trips and
# the live record's checks; ObjectChecks: a public name of objget.backends; Paths:
# objget.testing hands it out). A new one here costs its __eq__ and __hash__ at every start:
# give it eq=False unless something compares it.
VALUE_RECORDS = {
    "objget._config.DownloadConfig", "objget._config.RetryPolicy", "objget._config.Timeouts",
    "objget._models.ByteRange", "objget._models.DownloadResult", "objget._models.ObjectMeta",
    "objget.backends._options.BackendOptions",
    "objget.integrity.checks.ObjectChecks", "objget.engine._plan.Span",
    "objget.engine._checkpoint.Paths",
    "objget.engine._live.Live", "objget.engine._live.LiveTag",
}  # fmt: skip
# ... and the ones that sort (order=True: four generated methods more)
ORDERED_RECORDS = {"objget._models.ByteRange"}
# each dataclass of objget's loaded modules: [module.name, has __eq__, has __lt__] (one line:
# `_child` dedents the code it is given)
_RECORDS = (
    'sorted([f"{m}.{c.__qualname__}", "__eq__" in vars(c), "__lt__" in vars(c)] '
    'for m, mod in list(_sys.modules.items()) if m.startswith("objget") '
    "for c in vars(mod).values() "
    'if isinstance(c, type) and c.__module__ == m and "__dataclass_fields__" in vars(c))'
)


def test_a_download_builds_value_equality_only_where_something_compares(tmp_path):
    records = _quiet_download(tmp_path, _RECORDS)
    assert {name for name, eq, _ in records if eq} == VALUE_RECORDS
    assert {name for name, _, lt in records if lt} == ORDERED_RECORDS
    assert "objget.engine._scheduler.Claim" not in {name for name, _, _ in records}


def test_a_quiet_download_builds_no_progress_snapshot_class(tmp_path):
    """Nothing listens to a quiet download: `Progress` (`_progress.py`) is not even defined."""
    records = {name for name, _, _ in _quiet_download(tmp_path, _RECORDS)}
    assert "objget.backends._target.Origin" in records  # the download's own records are listed
    assert [name for name in records if name.endswith(".Progress")] == []


def test_progress_is_still_where_it_was_named():
    import objget
    from objget import _models, _progress

    assert objget.Progress is _models.Progress is _progress.Progress


def test_reading_the_boot_id_loads_no_codec_module():
    """A ranged download tags its live record with the boot id: read as bytes, not through
    a text file's "ascii" codec (`encodings.ascii`, a module to import)."""
    loaded = _loaded_after("from objget.engine._live import boot_id\nassert boot_id()")
    assert "encodings.ascii" not in loaded


def test_a_quiet_download_compiles_no_source_text(tmp_path):
    """Nothing on the path of a quiet ranged download calls `compile()` (dataclasses' methods
    are `exec`'d text, which does not build the `ast` classes): its first call builds them,
    ~9 M instructions, a tenth of `import objget.cli` (what `--help` and a usage error pay; a
    download imports `ast` anyway, through `dataclasses` -> `inspect`), for a `TypeVar` bound
    by name. (The import system compiles a module's source when its bytecode is stale: not
    counted.)"""
    (tmp_path / "blob").write_bytes(b"c" * 1_000_000)
    probe = textwrap.dedent(
        """
        import builtins
        compiled = []
        _compile = builtins.compile
        def _counting(source, filename, *args, **kwargs):
            if not str(filename).endswith(".py"):
                compiled.append(f"{filename}: {str(source)[:60]}")
            return _compile(source, filename, *args, **kwargs)
        builtins.compile = _counting
        """
    )
    body = f"""
        code = run(["-q", url_of("blob"), {str(tmp_path / "out")!r}])
        assert code == 0, code
        """
    assert _child(probe + _served(tmp_path, body, ranges=True), "compiled") == []
    assert (tmp_path / "out").read_bytes() == b"c" * 1_000_000
