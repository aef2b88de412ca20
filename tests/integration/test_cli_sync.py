"""Sync-like re-runs and the CLI's borrowed spellings, against nginx with the CLI as a subprocess.

- DEST's mtime is the object's Last-Modified after a download; `--skip-existing` then fetches
  nothing (no GET in nginx's access log), exits 0 and says "skipped"; a DEST of another size
  or mtime is downloaded again. The library's `DownloadConfig(skip_existing=True)` likewise.
- `-H/--header` reaches the server (nginx refuses the request without it), credential-like
  values never appear in `-vv` logs or errors, oss:// and s3:// refuse it (exit 2).
- `-k/--insecure` is `--no-verify-tls`; shell completion comes from `_OBJGET_COMPLETE`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import objget

from .._servers.nginx import Nginx
from .._servers.util import write_random

MiB = 1024 * 1024
SIZE = 3 * MiB + 17
STAMP = 1_600_000_007  # 2020-09-13 12:26:47 UTC: the object's Last-Modified
SECRET = "s3cr3t-Bearer-VALUE"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "objget", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def requests(log: Path, skip: int = 0) -> list[str]:
    """The request lines ("GET /x HTTP/1.1") nginx logged after the first `skip` lines."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split('"')[1] for line in lines[skip:]]


def logged(server: Nginx) -> int:
    return len(requests(server.access_log))


@pytest.fixture
def site(tmp_path: Path, nginx_factory) -> tuple[Nginx, Path]:
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "obj.bin", SIZE, seed=5)
    os.utime(root / "obj.bin", (STAMP, STAMP))
    return nginx_factory(root), root


def test_dest_mtime_is_last_modified_and_skip_existing_fetches_nothing(site, tmp_path):
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    first = run(url, str(dest), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["skipped"] is False
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()
    assert int(dest.stat().st_mtime) == STAMP  # the object's Last-Modified, to the second

    mark = logged(server)
    again = run(url, str(dest), "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["skipped"] is True and result["bytes_fetched"] == 0
    assert result["path"] == str(dest) and result["size"] == SIZE
    sent = requests(server.access_log, mark)
    assert sent and not [r for r in sent if r.startswith("GET")], sent  # a HEAD, no GET

    mark = logged(server)
    text = run(url, str(dest), "--skip-existing")
    assert text.returncode == 0, text.stderr
    assert "Skipped" in text.stderr and "up to date" in text.stderr
    assert not [r for r in requests(server.access_log, mark) if r.startswith("GET")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.bin", "root"]


@pytest.mark.parametrize("change", ["mtime", "size", "missing"])
def test_skip_existing_downloads_a_different_dest_again(site, tmp_path, change):
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    assert run(url, str(dest), "-q").returncode == 0
    if change == "mtime":
        os.utime(dest, (STAMP + 2, STAMP + 2))  # one second's difference is a difference
    elif change == "size":
        with open(dest, "ab") as f:
            f.write(b"x")
        os.utime(dest, (STAMP, STAMP))
    else:
        dest.unlink()
    mark = logged(server)
    again = run(url, str(dest), "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["skipped"] is False and result["bytes_fetched"] == SIZE
    assert [r for r in requests(server.access_log, mark) if r.startswith("GET")]
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()
    assert int(dest.stat().st_mtime) == STAMP


def test_a_newer_object_is_downloaded_again(site, tmp_path):
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    assert run(url, str(dest), "-q").returncode == 0
    os.utime(root / "obj.bin", (STAMP + 3600, STAMP + 3600))  # same size, new Last-Modified
    again = run(url, str(dest), "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped"] is False
    assert int(dest.stat().st_mtime) == STAMP + 3600


def test_skip_existing_with_checksum_reads_the_file(site, tmp_path):
    """Same size and mtime but other bytes: a size-and-time check skips it; with --checksum
    the existing file must also match, so it is downloaded again."""
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    want = hashlib.sha256((root / "obj.bin").read_bytes()).hexdigest()
    assert run(url, str(dest), "-q").returncode == 0
    ok = run(url, str(dest), "--skip-existing", "--checksum", f"sha256:{want}", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["skipped"] is True
    assert json.loads(ok.stdout)["verified"] == ["sha256"]
    with open(dest, "r+b") as f:
        f.write(b"\0" * 16)  # same size
    os.utime(dest, (STAMP, STAMP))  # same mtime
    plain = run(url, str(dest), "--skip-existing", "--json")
    assert json.loads(plain.stdout)["skipped"] is True  # documented: no content check
    mark = logged(server)
    checked = run(url, str(dest), "--skip-existing", "--checksum", f"sha256:{want}", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["skipped"] is False
    assert [r for r in requests(server.access_log, mark) if r.startswith("GET")]
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()


def test_a_filesystem_that_refuses_times_does_not_fail_the_download(site, tmp_path):
    """utimensat fails (EPERM, injected by strace): the verified download still commits,
    with the download's own time; --skip-existing then simply downloads again."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is required (Debian package strace)")
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    cmd = [strace, "-f", "-qq", "-o", "/dev/null", "-e", "inject=utimensat:error=EPERM",
           sys.executable, "-m", "objget", url, str(dest), "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()
    assert int(dest.stat().st_mtime) != STAMP
    again = run(url, str(dest), "--skip-existing", "--json")
    assert json.loads(again.stdout)["skipped"] is False
    assert int(dest.stat().st_mtime) == STAMP


def test_killed_at_the_commit_leaves_no_dest_with_a_fake_time(site, tmp_path):
    """SIGKILL at the rename that commits (strace -P on the temp file, the rename's first
    path): no DEST at all, the temp file stays; the next --skip-existing run finishes the
    download and DEST appears with the object's time."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is required (Debian package strace)")
    server, root = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    cmd = [strace, "-f", "-qq", "-o", "/dev/null", "-P", f"{dest}.objget-part",
           "-e", "inject=rename,renameat,renameat2:signal=KILL",
           sys.executable, "-m", "objget", url, str(dest), "-q"]  # fmt: skip
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode != 0
    assert not dest.exists()
    part = Path(f"{dest}.objget-part")
    assert part.exists() and int(part.stat().st_mtime) == STAMP  # stamped before the rename
    again = run(url, str(dest), "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["skipped"] is False, result
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()
    assert int(dest.stat().st_mtime) == STAMP


def test_library_skip_existing(site, tmp_path):
    server, _ = site
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "lib.bin"
    first = objget.download(url, dest)
    assert not first.skipped and first.to_dict()["skipped"] is False
    assert int(dest.stat().st_mtime) == STAMP
    mark = logged(server)
    config = objget.DownloadConfig(skip_existing=True)
    second = objget.download(url, dest, config=config)
    assert second.skipped and second.bytes_fetched == 0 and second.size == SIZE
    assert second.to_dict()["skipped"] is True
    assert not [r for r in requests(server.access_log, mark) if r.startswith("GET")]
    os.utime(dest, (STAMP - 1, STAMP - 1))
    third = objget.download(url, dest, config=config)
    assert not third.skipped and third.bytes_fetched == SIZE


def test_server_without_last_modified_is_never_skipped(tmp_path, nginx_factory):
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "obj.bin", SIZE, seed=6)
    os.utime(root / "obj.bin", (STAMP, STAMP))
    server = nginx_factory(root, extra='add_header Last-Modified "";')  # drops the header
    url = f"{server.url}/obj.bin"
    dest = tmp_path / "obj.bin"
    assert run(url, str(dest), "-q").returncode == 0
    assert int(dest.stat().st_mtime) != STAMP  # nothing to set it to: the download's own time
    os.utime(dest, (STAMP, STAMP))  # even a matching mtime cannot be compared with nothing
    mark = logged(server)
    again = run(url, str(dest), "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped"] is False
    assert [r for r in requests(server.access_log, mark) if r.startswith("GET")]


# --- --header ----------------------------------------------------------------------------------
GUARD = f'if ($http_authorization != "Bearer {SECRET}") {{ return 401; }}'


def test_header_is_sent_and_its_secret_never_logged(tmp_path, nginx_factory):
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "obj.bin", SIZE, seed=7)
    server = nginx_factory(root, extra=GUARD)
    url = f"{server.url}/obj.bin"
    refused = run(url, str(tmp_path / "no.bin"), "-q")
    assert refused.returncode == 3, refused.stderr  # 401 without the header

    dest = tmp_path / "obj.bin"
    done = run(
        url, str(dest), "-vv", "-j", "4", "--part-size", "1M",
        "--header", f"Authorization: Bearer {SECRET}", "-H", "X-Trace-Id: visible-42",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == (root / "obj.bin").read_bytes()
    assert "visible-42" in done.stderr and "REDACTED" in done.stderr  # logged, redacted
    assert SECRET not in done.stderr + done.stdout

    bad = run(url, str(tmp_path / "bad.bin"), "-vv", "-H", f"Authorization: Bearer {SECRET}x")
    assert bad.returncode == 3
    assert SECRET not in bad.stderr + bad.stdout


def test_header_from_a_file_keeps_it_out_of_argv(tmp_path, nginx_factory):
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "obj.bin", SIZE, seed=8)
    server = nginx_factory(root, extra=GUARD)
    headers = tmp_path / "headers.txt"
    headers.write_text(f"# a comment\nAuthorization: Bearer {SECRET}\n\nX-Other: 1\n")
    done = run(f"{server.url}/obj.bin", str(tmp_path / "obj.bin"), "-q", "-H", f"@{headers}")
    assert done.returncode == 0, done.stderr


def test_header_in_a_manifest_batch(tmp_path, nginx_factory):
    """A batch of plain-http URLs (the batch's lean wire path) sends the header too."""
    root = tmp_path / "root"
    root.mkdir()
    for i in range(3):
        write_random(root / f"m{i}.bin", 70_000 + i, seed=i)
    server = nginx_factory(root, extra=GUARD)
    manifest = tmp_path / "urls.txt"
    manifest.write_text("".join(f"{server.url}/m{i}.bin\n" for i in range(3)))
    out = tmp_path / "out"
    out.mkdir()
    refused = run("--manifest", str(manifest), f"{out}/", "-q")
    assert refused.returncode == 8, refused.stderr  # every object: 401
    done = run(
        "--manifest", str(manifest), f"{out}/", "-q",
        "-H", f"Authorization: Bearer {SECRET}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for i in range(3):
        assert (out / f"m{i}.bin").read_bytes() == (root / f"m{i}.bin").read_bytes()
    assert SECRET not in done.stderr + refused.stderr


@pytest.mark.parametrize(
    ("source", "header", "says"),
    [
        ("s3://bucket/key", "X-Amz-Meta-A: 1", "http:// and https:// sources only"),
        ("oss://bucket/key", "X-Oss-Foo: 1", "http:// and https:// sources only"),
        ("http://127.0.0.1:9/x", f"Authorization Bearer {SECRET}", "'Name: value'"),
        ("http://127.0.0.1:9/x", "Range: bytes=0-1", "cannot be set"),
        ("http://127.0.0.1:9/x", f"X-Api-Key: {SECRET}\r\nX-Evil: 1", "control character"),
    ],
)
def test_header_usage_errors(tmp_path, source, header, says):
    proc = run(source, str(tmp_path / "out"), "-H", header)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()


# --- -k / --insecure, completion ---------------------------------------------------------------
@pytest.mark.parametrize("flag", ["-k", "--insecure"])
def test_insecure_is_no_verify_tls(tmp_path, nginx_factory, flag):
    root = tmp_path / "root"
    root.mkdir()
    write_random(root / "obj.bin", SIZE, seed=9)
    server = nginx_factory(root, tls=True)
    url = f"{server.url}/obj.bin"
    assert run(url, str(tmp_path / "strict.bin"), "-q").returncode == 5  # untrusted CA
    done = run(url, str(tmp_path / "obj.bin"), flag, "-q")
    assert done.returncode == 0, done.stderr
    assert "TLS certificates are NOT verified" in done.stderr


def test_bash_completion_script():
    env = {**os.environ, "_OBJGET_COMPLETE": "bash_source"}
    proc = run(env=env)
    assert proc.returncode == 0, proc.stderr
    assert "_objget_completion" in proc.stdout and "complete " in proc.stdout
    env = {**os.environ, "_OBJGET_COMPLETE": "bash_complete", "COMP_WORDS": "objget --skip",
           "COMP_CWORD": "1"}  # fmt: skip
    proc = run(env=env)
    assert "--skip-existing" in proc.stdout
