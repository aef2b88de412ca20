"""Start-up cost guard: `import objget`, `import objget.cli` and a quiet plain-HTTP download
must not load rich, the batch machinery, the OSS/S3 backends or the oss2 drop-in, and the
plain-HTTP download must not load TLS, the system's CA store, http.client, email or urllib3
(objget speaks HTTP/1.1 itself: `backends/_conn.py`). Nor does it load what only an asked-for
check needs (OpenSSL's digests, the checkers of other stores), nor more than MAX_OBJGET_MODULES
of objget's own modules; an
anonymous s3:// download loads neither the listing's XML parser, the error parser nor
OpenSSL's digests (it signs nothing).

Module sets, not timings: each check runs in a fresh interpreter and lists what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import objget

# prefixes of modules a single http(s) download never needs
HEAVY = (
    "rich",
    "objget.batch",
    "objget.many",
    "objget.cli._cli_batch",
    "objget._oss2_compat",
    "objget.backends.oss",
    "objget.backends._oss",
    "objget.backends.s3",
    "objget.backends._s3",
    "objget.distributed",
    "xml",
    "sqlite3",
    "botocore",
    "boto3",
    "oss2",
    "alibabacloud_credentials",
    "objget._sumsfile",
    "objget.backends._proxy",  # only with a proxy configured or in the environment
)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")  # and upper case
# what only a download needs: the engine and its transport. `objget --help`, `--version` and
# the usage errors load none of it (`--version` reads the package metadata, which loads
# `email`).
DOWNLOAD = (
    "objget.engine._downloader",
    "objget._config",
    "objget._models",
    "objget.backends",
)


# a plain download never needs these unless asked for: OpenSSL's digests (--checksum, a store's
# SHA/MD5), hmac/secrets (the run id is os.urandom), random (jitter: at the first retry), the
# CRC checkers of S3 and OSS objects; objget._retry (the retry decisions: at the first failure
# or error answer)
UNASKED = (
    "hashlib", "_hashlib", "hmac", "secrets", "random", "base64", "objget.integrity.digests",
    "objget._retry",
    "objget.integrity.s3crc", "objget.integrity.crc64", "objget.integrity._gf2",
)  # fmt: skip
# what a quiet, ranged 1 MB plain-HTTP download does not load (on main at 9177d15 it did):
# json (the checkpoint codec: a fresh download's first save is its first periodic one)
# and the checkpoint record's module (`_checkpoint_record`: the record and its codec)
ONLY_LATER = ("json", "objget.engine._checkpoint_record")
# objget modules a quiet plain-HTTP download loads (49 when this was written, 50 before): a new
# one on this path must be worth its import (~0.3 ms each, more with dataclasses). 50 since the
# streams' read buffers (`engine._buffers`): peak RSS flat as streams are added (issue 16)
MAX_OBJGET_MODULES = 50


def _loaded_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the modules (of interest) it left loaded."""
    modules: list[str] = _child(code, "sorted(_sys.modules)")
    return modules


def _child(code: str, expr: str, env: dict[str, str] | None = None) -> Any:
    """Run `code` in a fresh interpreter, then `expr` there (`_sys` is sys): its JSON value."""
    script = code + textwrap.dedent(
        f"""
        import sys as _sys
        _value = {expr}
        import json as _json  # after: `expr` may list the modules
        _sys.stdout.write("\\n" + _json.dumps(_value))
        """
    )
    if env is None:
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _served(directory: object, body: str, *, ranges: bool = False) -> str:
    """A script that serves `directory` over plain HTTP on 127.0.0.1 (`url_of(name)`) while it
    runs `body` (dedented code). The server is a few lines over `_socket`: http.server would
    load http.client, email and ssl itself, the modules a download must not need. It answers
    ranges always, but says so (`Accept-Ranges: bytes`) only with `ranges`."""
    accept = "bytes" if ranges else "none"
    head = textwrap.dedent(
        f"""
        import os, _socket, threading  # not socket.py: a plain download must not need it
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        def serve(fd):
            conn = _socket.socket(fileno=fd)
            try:
                data = b""
                while True:
                    while b"\\r\\n\\r\\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            return
                        data += more
                    head, _, data = data.partition(b"\\r\\n\\r\\n")
                    method, path = head.split(b" ")[:2]
                    name = os.path.join({str(directory)!r}, path.decode().lstrip("/"))
                    blob = open(name, "rb").read()
                    status, extra = b"200 OK", b""
                    asked = head.lower().partition(b"\\r\\nrange: bytes=")[2].split(b"\\r\\n")[0]
                    if asked and method == b"GET":  # what S3 answers; http sees `none` above
                        first, _, last = asked.partition(b"-")
                        first, last = int(first), int(last or len(blob) - 1)
                        extra = b"Content-Range: bytes %d-%d/%d\\r\\n" % (first, last, len(blob))
                        status, blob = b"206 Partial Content", blob[first : last + 1]
                    conn.sendall(
                        b"HTTP/1.1 " + status + b"\\r\\nAccept-Ranges: {accept}\\r\\n" + extra
                        + b"Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\\r\\n"
                        + b"Content-Length: %d\\r\\n\\r\\n" % len(blob)
                        + (blob if method == b"GET" else b"")
                    )
            finally:
                conn.close()
        def accept():
            while True:
                try:
                    fd, _ = listener._accept()
                except OSError:
                    return
                threading.Thread(target=serve, args=(fd,), daemon=True).start()
        threading.Thread(target=accept, daemon=True).start()
        url_of = lambda name: "http://127.0.0.1:%d/%s" % (listener.getsockname()[1], name)
        from objget.cli import run
        """
    )
    tail = "listener.close()\n"
    return head + textwrap.dedent(body) + tail


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "rich" or m.startswith(HEAVY)]


def test_import_objget_loads_only_the_error_tree():
    loaded = _loaded_after("import objget")
    assert [m for m in loaded if m.startswith("objget")] == ["objget", "objget._exceptions"]
    assert _heavy(loaded) == []
    for lib in ("urllib3", "http.client", "ssl", "argparse", "click", "dataclasses"):
        assert lib not in loaded


def _download_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m in DOWNLOAD or m.startswith(tuple(p + "." for p in DOWNLOAD))]


def test_import_cli_loads_no_rich_batch_or_other_backends():
    loaded = _loaded_after("import objget.cli")
    assert _heavy(loaded) == []
    assert "objget._api" not in loaded


def test_the_command_line_loads_no_click():
    """The command line is argparse's (`cli/_args.py`, issue 16): click and what it brought
    along (`inspect`, `uuid` -> `platform`, `datetime`; ~58 M instructions of an 8 MiB
    download's ~385 M) are not loaded to read it, nor to print the help."""
    brought = ("click", "uuid", "platform", "datetime", "inspect", "dataclasses")
    for code in ("import objget.cli", "from objget.cli import run; run(['--help'])"):
        loaded = _loaded_after(code)
        assert _matching(loaded, brought) == [], code


def test_import_cli_loads_no_engine_or_transport():
    loaded = _loaded_after("import objget.cli")
    assert _download_modules(loaded) == []


def test_help_version_and_usage_errors_load_no_engine_or_transport():
    code = textwrap.dedent(
        """
        import contextlib, io
        from objget.cli import run
        out = contextlib.redirect_stdout(io.StringIO())
        err = contextlib.redirect_stderr(io.StringIO())
        for argv in (["--help"], ["--version"], ["--no-such-option", "x"], [], ["-j", "0", "x"]):
            with out, err:
                assert run(argv) in (0, 2), argv
        """
    )
    loaded = _loaded_after(code)
    assert _download_modules(loaded) == []
    assert _heavy(loaded) == []


def test_quiet_http_download_loads_no_rich_batch_or_other_backends(tmp_path):
    (tmp_path / "blob").write_bytes(b"x" * 100_000)
    code = _served(
        tmp_path,
        f"""
        code = run(["-q", url_of("blob"), {str(tmp_path / "out")!r}])
        assert code == 0, code
        """,
    )
    loaded = _loaded_after(code)
    assert (tmp_path / "out").read_bytes() == b"x" * 100_000
    assert "objget.engine._engine" in loaded or "objget.engine._downloader" in loaded
    assert _heavy(loaded) == []
    # no TLS (nor the system CA store, ~45 ms), no second HTTP client, no email parser: ~50 ms
    # of start-up that urllib3 and http.client cost before objget spoke HTTP/1.1 itself
    assert _plain_http_never(loaded) == []


def _plain_http_never(modules: list[str]) -> list[str]:
    # socket.py and its selectors: objget's connections are `_socket`'s (`backends/_conn.py`)
    never = ("ssl", "_ssl", "http", "urllib3", "email", "objget.backends._tls", "socket",
             "selectors")  # fmt: skip
    return [m for m in modules if m in never or m.startswith(tuple(p + "." for p in never))]


def _run_ok(directory: Any, argv: str, serve: Any = None) -> str:
    """A script that serves `directory` (`serve`: `_served` unless given) and runs the CLI
    once with `argv` (source of a list; `out` is DIRECTORY/out), failing unless it exits 0."""
    body = f"""
        out = {os.path.join(str(directory), "out")!r}
        code = run({argv})
        assert code == 0, code
        """
    return str((serve or _served)(directory, body))


def _quiet_download(tmp_path: Any, expr: str, *, argv: str = "", env: Any = None) -> Any:
    """A quiet download of 100 kB (`url_of("bucket/blob")` unless `argv` is given), then
    `expr` in the downloading interpreter."""
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "blob").write_bytes(b"z" * 100_000)
    code = _run_ok(tmp_path, argv or '["-q", url_of("bucket/blob"), out]')
    value = _child(code, expr, env)
    assert (tmp_path / "out").read_bytes() == b"z" * 100_000
    return value


def _matching(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m in prefixes or m.startswith(tuple(p + "." for p in prefixes))]


def test_quiet_http_download_loads_nothing_unasked(tmp_path):
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)")
    assert _matching(loaded, UNASKED) == []
    assert "datetime" not in loaded  # the server's IMF-fixdate Last-Modified is read without it
    own = [m for m in loaded if m == "objget" or m.startswith("objget.")]
    assert len(own) <= MAX_OBJGET_MODULES, own


def test_quiet_ranged_download_loads_no_checkpoint_codec(tmp_path):
    """A fresh ranged download that ends within its first checkpoint interval saves no
    checkpoint (a record with no span gives a resume nothing), so `json` is not loaded."""
    (tmp_path / "blob").write_bytes(b"r" * 1_000_000)
    out = tmp_path / "out"
    code = _served(
        tmp_path,
        f"""
        code = run(["-q", url_of("blob"), {str(out)!r}])
        assert code == 0, code
        """,
        ranges=True,
    )
    loaded = _loaded_after(code)
    assert out.read_bytes() == b"r" * 1_000_000
    assert "objget.engine._engine" in loaded
    assert _matching(loaded, ONLY_LATER) == []


def test_quiet_anonymous_s3_download_loads_no_listing_or_error_parser(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in PROXY_VARIABLES and not k.startswith("AWS_")
    }
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    argv = (
        '["-q", "--no-sign-request", "--addressing-style", "path", "--endpoint-url", '
        'url_of(""), "s3://bucket/blob", out]'
    )
    loaded = _quiet_download(tmp_path, "sorted(_sys.modules)", argv=argv, env=env)
    assert "objget.backends.s3" in loaded
    never = ("xml", "html", "botocore", "hashlib", "_hashlib", "hmac", "secrets", "random")
    ours = ("objget.backends._s3_list", "objget.backends._s3_errors", "objget.backends._s3_sigv4")
    assert _matching(loaded, (*never, *ours, "objget.integrity.digests")) == []


def test_import_objget_cli_loads_no_http_client_tls_or_email():
    assert _plain_http_never(_loaded_after("import objget.cli")) == []


def test_quiet_batch_loads_no_rich(tmp_path):
    (tmp_path / "blob").write_bytes(b"y" * 5000)
    (tmp_path / "out").mkdir()
    manifest = tmp_path / "list.txt"
    code = _served(
        tmp_path,
        f"""
        with open({str(manifest)!r}, "w") as f:
            f.write(url_of("blob") + "\\n")
        argv = ["-q", "--manifest", {str(manifest)!r}, {str(tmp_path / "out")!r}]
        code = run(argv)
        assert code == 0, code
        """,
    )
    loaded = _loaded_after(code)
    assert (tmp_path / "out" / "blob").read_bytes() == b"y" * 5000
    assert "objget.cli._cli_batch" in loaded
    assert [m for m in loaded if m == "rich" or m.startswith("rich.")] == []


def test_lazy_public_names_resolve_to_their_definitions():
    from objget import _api, _config, _models, _oss2_compat, _progress, batch
    from objget.backends import _options
    from objget.engine import _downloader
    from objget.many import _batch_models

    assert objget.download is _api.download
    assert objget.Downloader is _downloader.Downloader
    assert objget.DownloadConfig is _config.DownloadConfig
    assert objget.Timeouts is _config.Timeouts
    assert objget.RetryPolicy is _config.RetryPolicy
    assert objget.ByteRange is _models.ByteRange
    assert objget.ObjectMeta is _models.ObjectMeta
    assert objget.Progress is _progress.Progress
    assert objget.DownloadResult is _models.DownloadResult
    assert objget.BatchItem is _batch_models.BatchItem
    assert objget.BatchResult is _batch_models.BatchResult
    assert objget.BackendOptions is _options.BackendOptions
    assert objget.resumable_download is _oss2_compat.resumable_download
    assert objget.download_many is batch.download_many
    assert set(objget.__all__) <= set(dir(objget))


def test_unknown_attribute_is_an_attribute_error():
    try:
        objget.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("objget.no_such_name did not raise")
    assert not hasattr(objget, "no_such_name")


def test_the_transport_skips_proxy_rules_only_when_they_would_name_no_proxy(monkeypatch, caplog):
    """`_transport` decides without importing `_proxy` that there is no proxy: it must agree
    with `proxy_rules` for every mix of the variables (set, empty or unset)."""
    import itertools
    import logging

    from objget import DownloadConfig
    from objget.backends._proxy import proxy_rules
    from objget.backends._transport import _proxy_rules

    names = [v for n in PROXY_VARIABLES for v in (n, n.upper())]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    values = (None, "", "http://127.0.0.1:3128")
    for name, value, other in itertools.product(names, values, ("NO_PROXY", "no_proxy", "X")):
        env = {} if value is None else {name: value}
        env[other] = "example.com"
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="objget"):
                full = proxy_rules(None, None, env)
                logged = bool(caplog.records)
            lazy = _proxy_rules(DownloadConfig())
        if lazy is None:
            assert not full.any and not logged, env
        else:
            assert lazy == full, env
    assert _proxy_rules(DownloadConfig(proxy="")) is not None  # an explicit setting is read
