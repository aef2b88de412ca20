"""The layering rules of DESIGN.md, held by a test (AST over src/objget, no third-party tool).

1. Pure modules (docstring `PURE:`, plus the ones DESIGN.md names) do no I/O: they import no
   module that reaches the disk, network, clock, threads or environment, call no `open`/`print`,
   and import only other pure modules or the value modules of objget.
2. Backends never import the engine, the disk layer, the batch or the CLI, nor verification:
   of `objget.integrity` they import only the description (`integrity.checks`); integrity
   builds and runs the checkers.
3. The library never imports the CLI (`objget.cli` and its modules, argparse, rich).
4. Batch and Ray import only the engine's public faces (the `__all__` of `_downloader`,
   `_engine_face`, `_phases` and `_windows`), values and backends' public names, and speak no
   HTTP themselves. Where that is not true yet, the violations are listed in
   `BATCH_ALLOWED_TODAY`, which may only shrink (a new violation fails, and so does a listed
   one that went away: take it off).
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "objget"


@dataclass(frozen=True)
class Import:
    importer: str
    module: str  # the module named by the statement, resolved to its dotted name
    names: tuple[str, ...]  # for `from module import a, b`
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parse() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PKG.rglob("*.py")):
        trees[_module_name(path)] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return trees


TREES = _parse()
MODULES = set(TREES)


def _package_of(module: str) -> list[str]:
    path = PKG.parent / (module.replace(".", "/") + "/__init__.py")
    return module.split(".") if path.exists() else module.split(".")[:-1]


def _imports(module: str, tree: ast.Module) -> list[Import]:
    found = []
    for node in ast.walk(tree):  # also the lazy imports inside functions
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            if node.level:
                pkg = _package_of(module)
                base = pkg[: len(pkg) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(Import(module, target, names, node.lineno))
    return found


IMPORTS = {m: _imports(m, t) for m, t in TREES.items()}


def _targets(imp: Import) -> set[str]:
    """Every module the statement names: `from . import http` names objget.backends.http."""
    out = {imp.module}
    out |= {f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in MODULES}
    return out


def _hits(target: str, patterns: set[str], *, submodules: bool = True) -> bool:
    """`target` is one of `patterns` (globs), or (with `submodules`) inside one of them."""
    return any(
        fnmatch.fnmatchcase(target, p) or (submodules and target.startswith(p + "."))
        for p in patterns
    )


def _docstring(module: str) -> str:
    return ast.get_docstring(TREES[module]) or ""


# --- 1. pure modules ---------------------------------------------------------------------------

# named pure by DESIGN.md / STYLE.md (planning, ranges, retry, concurrency, CRC combine, signing)
PURE_BY_DESIGN = {
    "objget.engine._plan",
    "objget.engine._concurrency",
    "objget._ranges",
    "objget._retry",
    "objget.integrity._gf2",
    "objget.backends._oss_auth",
    "objget.backends._s3_sigv4",
}
# values a pure module may use; held to the same rule
VALUES = {"objget._models", "objget._config", "objget._exceptions"}
PURE = PURE_BY_DESIGN | VALUES | {m for m in MODULES if _docstring(m).startswith("PURE")}

# top-level modules that reach the disk, network, clock, threads, processes or environment
IO_MODULES = {
    "asyncio", "concurrent", "ctypes", "fcntl", "glob", "http", "io", "logging", "mmap",
    "multiprocessing", "os", "pathlib", "random", "secrets", "select", "selectors", "shutil",
    "signal", "socket", "sqlite3", "ssl", "subprocess", "sys", "tempfile", "threading", "time",
    "urllib3", "_thread", "botocore", "oss2", "ray", "requests", "argparse", "rich",
    "urllib.request",
}  # fmt: skip
IO_CALLS = {"open", "print", "input", "breakpoint", "exec", "eval", "__import__"}
IO_ATTRIBUTES = {"now", "utcnow", "today", "environ", "getenv", "monotonic", "perf_counter"}
# pure functions a pure module may take from a module that is not pure as a whole
PURE_NAMES_ELSEWHERE = {
    "objget.backends._redact": {"REDACTED", "mask_key_id", "redact_text", "redact_url"},
    "objget.backends._proxy": {"parse_proxy"},  # DownloadConfig checks its `proxy` setting
    # the checkpoint record's framing and field checks (pure functions beside the file I/O)
    "objget.engine._checkpoint": {
        "CheckpointInvalid",
        "frame",
        "int_field",
        "parse_spans",
        "unframe",
    },
}
# I/O edges kept inside a pure module, by function: (module, function)
PURE_EDGES = {
    ("objget._sumsfile", "read_sums"),  # reads the --checksum-file; parse_sums is the pure part
}


def test_the_pure_modules_exist():
    assert PURE_BY_DESIGN | VALUES <= MODULES
    assert {"objget.engine._plan", "objget._sumsfile", "objget.backends._s3_urls"} <= PURE


def _pure_violations(module: str) -> list[str]:
    bad = []
    for imp in IMPORTS[module]:
        for target in _targets(imp):
            top = target.split(".")[0]
            if target.startswith("objget"):
                if imp.names and set(imp.names) <= PURE_NAMES_ELSEWHERE.get(target, set()):
                    continue
                container = (
                    target == "objget"
                    or target == imp.module
                    and all(f"{target}.{n}" in MODULES for n in imp.names)
                )  # `from . import mod`: the package only holds the module named
                if not container and target not in PURE and target in MODULES:
                    bad.append(f"{module}:{imp.line} imports {target} (not pure)")
            elif top in IO_MODULES or _hits(target, IO_MODULES):
                bad.append(f"{module}:{imp.line} imports {target}")
    edges = [
        n
        for n in ast.walk(TREES[module])
        if isinstance(n, ast.FunctionDef) and (module, n.name) in PURE_EDGES
    ]
    skip = {id(n) for edge in edges for n in ast.walk(edge)}
    for node in ast.walk(TREES[module]):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in IO_CALLS:
                bad.append(f"{module}:{node.lineno} calls {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr in IO_ATTRIBUTES:
            bad.append(f"{module}:{node.lineno} uses .{node.attr}")
    return bad


def test_pure_modules_do_no_io():
    bad = [v for m in sorted(PURE) for v in _pure_violations(m)]
    assert bad == []
    assert all(m in PURE for m, _ in PURE_EDGES)


def test_the_pure_rule_has_teeth():
    tree = ast.parse("import os\nfrom . import _fileio\nopen('x')\nfrom datetime import datetime\n"
                     "datetime.now()\n")  # fmt: skip
    TREES["objget.engine._probe"] = tree
    IMPORTS["objget.engine._probe"] = _imports("objget.engine._probe", tree)
    try:
        found = _pure_violations("objget.engine._probe")
    finally:
        del TREES["objget.engine._probe"], IMPORTS["objget.engine._probe"]
    assert len(found) == 4, found  # os, _fileio, open(), .now


# --- 2. backends ---------------------------------------------------------------------------------

# the engine, the disk layer, the batch and the CLI
NOT_FOR_BACKENDS = {
    "objget.engine", "objget.many", "objget.batch", "objget.distributed", "objget.cli",
    "objget._api", "objget._oss2_compat", "objget.testing", "argparse", "rich",
}  # fmt: skip
# what a backend may import of objget.integrity: the description of an object's checks
INTEGRITY_FOR_BACKENDS = {"objget.integrity.checks"}


def test_backends_never_import_the_engine_disk_batch_or_cli():
    bad = [
        f"{imp.importer}:{imp.line} imports {t}"
        for m in sorted(MODULES)
        if m.startswith("objget.backends")
        for imp in IMPORTS[m]
        for t in _targets(imp)
        if _hits(t, NOT_FOR_BACKENDS)
    ]
    assert bad == []


def test_backends_only_describe_checks():
    bad = [
        f"{imp.importer}:{imp.line} imports {t}"
        for m in sorted(MODULES)
        if m.startswith("objget.backends")
        for imp in IMPORTS[m]
        for t in _targets(imp)
        if _hits(t, {"objget.integrity"}) and t not in INTEGRITY_FOR_BACKENDS
    ]
    assert bad == []


# capabilities only some backends (or bodies, or signers) have: asked with isinstance on a
# Protocol of objget.backends._base, never probed with getattr (which mypy cannot follow)
CAPABILITIES = {
    "abort", "answer_checksums", "checksummer", "file_checks", "headers", "list_objects",
    "object_checks", "part_sizes", "renew", "text",
}  # fmt: skip


def test_no_getattr_probe_for_a_capability():
    bad = [
        f"{m}:{node.lineno} getattr(..., {node.args[1].value!r})"
        for m in sorted(MODULES)
        for node in ast.walk(TREES[m])
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value in CAPABILITIES
    ]
    assert bad == []


# --- 3. the library never imports the CLI ---------------------------------------------------------

CLI = {"objget.cli", "objget.__main__"}
CLI_ONLY = CLI | {"argparse", "rich"}


def test_the_library_never_imports_the_cli():
    library = {m for m in MODULES if not _hits(m, CLI)}
    bad = [
        f"{imp.importer}:{imp.line} imports {t}"
        for m in sorted(library)
        for imp in IMPORTS[m]
        for t in _targets(imp)
        if _hits(t, CLI_ONLY)
    ]
    assert bad == []


# --- 4. batch and Ray use only the engine's public face -------------------------------------------

BATCH = {"objget.batch", "objget.distributed", "objget.many"}
# what batch modules may import of objget: the engine's public face, values, backends' public names
# the engine's faces: a batch module may import only the names in their __all__
FACES = {
    "objget.engine._downloader",
    "objget.engine._engine_face",
    "objget.engine._phases",
    "objget.engine._windows",
}
BATCH_MAY_IMPORT = FACES | {
    "objget",
    "objget.many",
    "objget.many.*",
    "objget.batch",
    "objget.distributed",  # batch.py names RayRunner in download_many's signature (types only)
    "objget._models",
    "objget._config",
    "objget._exceptions",
    "objget._exit",
    "objget._extras",
    "objget._log",  # the library's logger (logging only once it is loaded)
    "objget.backends",
    "objget.backends._base",
    "objget.integrity",  # the package's public names: the checks, as the engine runs them
}
SPEAKS_HTTP = {"urllib3", "socket", "ssl", "http", "select", "selectors"}

# Violations allowed (importer -> target). The one-engine refactor (issue 15: batch and Ray
# call the engine's phases and faces) removed the last of them; a new one fails the test.
BATCH_ALLOWED_TODAY: set[tuple[str, str]] = set()  # none left: keep it so


def _public(module: str) -> set[str]:
    for node in TREES[module].body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def _batch_violations() -> set[tuple[str, str]]:
    found = set()
    for m in sorted(MODULES):
        if not _hits(m, BATCH):
            continue
        for imp in IMPORTS[m]:
            for t in _targets(imp):
                if t in FACES:
                    found |= {(m, f"{t}.{n}") for n in imp.names if n not in _public(t)}
                elif t.startswith("objget") and not _hits(t, BATCH_MAY_IMPORT, submodules=False):
                    found.add((m, t))
                elif t.split(".")[0] in SPEAKS_HTTP:
                    found.add((m, t.split(".")[0]))
    return found


def test_a_batch_module_takes_only_a_faces_public_names():
    tree = ast.parse("from ..engine._engine_face import SmallGroup\n"
                     "from ..engine._engine_face import _Single\n"
                     "from ..engine._single import fetch_small\n")  # fmt: skip
    TREES["objget.many._batch_probe"] = tree
    IMPORTS["objget.many._batch_probe"] = _imports("objget.many._batch_probe", tree)
    MODULES.add("objget.many._batch_probe")
    try:
        found = {v for v in _batch_violations() if v[0] == "objget.many._batch_probe"}
    finally:
        del TREES["objget.many._batch_probe"], IMPORTS["objget.many._batch_probe"]
        MODULES.discard("objget.many._batch_probe")
    assert found == {
        ("objget.many._batch_probe", "objget.engine._engine_face._Single"),
        ("objget.many._batch_probe", "objget.engine._single"),
    }


def test_batch_and_ray_use_only_the_engines_public_face():
    found = _batch_violations()
    new = sorted(found - BATCH_ALLOWED_TODAY)
    gone = sorted(BATCH_ALLOWED_TODAY - found)
    assert new == [], "new imports of engine internals from batch/Ray: use the engine's phases"
    assert gone == [], "these violations are gone: take them off BATCH_ALLOWED_TODAY"


# --- 5. the library is silent, and every module stays under 400 lines -----------------------------


def test_the_library_never_prints():
    library = {m for m in MODULES if not _hits(m, CLI)}
    bad = []
    for m in sorted(library):
        for node in ast.walk(TREES[m]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in {"print", "input", "breakpoint"}:
                    bad.append(f"{m}:{node.lineno} calls {node.func.id}()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"stdout", "stderr", "stdin"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                bad.append(f"{m}:{node.lineno} uses sys.{node.attr}")
    assert bad == []


def test_every_module_is_under_400_lines():
    sizes = {
        p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n >= 400} == {}
