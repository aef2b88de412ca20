"""Resume across a changed URL, with the CLI as a subprocess against two nginx servers.

Two nginx processes on different ports serve the same file with the same mtime, so both send
the same strong ETag (`"mtime-size"`) and Last-Modified: a download killed at 40 % from one
resumes from the other and fetches only what is missing. The bytes each server sent are
counted in its access log. A changed object at the mirror, a weak or missing ETag, start
over and say why; a presigned URL signed again resumes, and no query value is stored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from objget.engine._checkpoint import CheckpointInvalid, load, save

from .._servers.nginx import Nginx
from .._servers.util import live_done, sha256_file, write_random

MiB = 1024 * 1024
SIZE = 96 * MiB
NAME = "big.bin"
SIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261204T080000Z&X-Amz-Signature="
SLOW = ("-q", "--limit-rate", "32M")  # the killed runs: 40 % in about a second
SECRET1, SECRET2, TOKEN = "5ecre7f1r5751gnature", "5ecre7an0ther5ignature", "5ecre7s7s70ken"


def objget(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "objget", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out, err


def kill_at(
    proc: subprocess.Popen[str], dest: Path, fraction: float, *, durable: bool = False
) -> int:
    """SIGKILL once the run has written `fraction` of the object (by the live record and the
    durable checkpoint; with `durable`, by the durable checkpoint alone)."""
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = max(done, ckpt_done(dest), 0 if durable else live_done(dest))
        if done >= fraction * SIZE:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert done >= fraction * SIZE, f"killed at {done / SIZE:.1%}, not {fraction:.0%}"
    return done


def ckpt_done(dest: Path) -> int:
    try:
        ckpt = load(f"{dest}.objget-ckpt")
    except (CheckpointInvalid, OSError):
        return 0
    return 0 if ckpt is None else sum(s.stop - s.start for s in ckpt.spans)


_LOG_BYTES = re.compile(r'" (\d{3}) (\d+) ')


def served(log: Path) -> int:
    """Body bytes nginx sent, by its access log, once the log has not grown for 0.3 s. Bytes
    sent count even when the client closed the connection before reading them (a range
    split for an idle stream), so a run may be charged a little more than it asked for."""
    last, quiet = -1, 0
    for _ in range(100):
        lines = log.read_text().splitlines() if log.exists() else []
        quiet = quiet + 1 if len(lines) == last else 0
        if quiet == 3:
            break
        last = len(lines)
        time.sleep(0.1)
    return sum(int(m.group(2)) for line in lines if (m := _LOG_BYTES.search(line)))


@dataclasses.dataclass
class Site:
    server: Nginx
    root: Path
    log: Path

    def url(self, query: str = "") -> str:
        return f"{self.server.url}/{NAME}" + (f"?{query}" if query else "")


def start_site(tmp: Path, root: Path, name: str, extra: str = "") -> Site:
    work = tmp / name
    log = work / "access.log"
    server = Nginx(root, work, extra=f"access_log {log}; {extra}").start()
    return Site(server, root, log)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Server A and its mirror B: the same bytes, the same mtime (so the same ETag)."""
    root_a = tmp_path_factory.mktemp("root-a")
    root_b = tmp_path_factory.mktemp("root-b")
    write_random(root_a / NAME, SIZE, seed=17)
    os.utime(root_a / NAME, (1_700_000_000, 1_700_000_000))
    shutil.copy2(root_a / NAME, root_b / NAME)  # copy2 keeps the mtime
    work = tmp_path_factory.mktemp("nginx")
    a = start_site(work, root_a, "a")
    try:
        b = start_site(work, root_b, "b")
        try:
            yield a, b
        finally:
            b.server.stop()
    finally:
        a.server.stop()


@pytest.fixture(scope="module")
def partial(sites, tmp_path_factory):
    """A download from A with a presigned-looking URL, killed at >= 40 %: its directory."""
    a, _ = sites
    work = tmp_path_factory.mktemp("partial")
    dest = work / NAME
    kill_at(objget(a.url(SIGNED + SECRET1), str(dest), *SLOW), dest, 0.40, durable=True)
    return work


def copy_partial(partial: Path, into: Path) -> Path:
    """The killed run's data file and durable checkpoint, copied (its live record is for the
    original data file, so the copy resumes from the durable checkpoint only)."""
    for suffix in (".objget-part", ".objget-ckpt"):
        shutil.copy2(partial / f"{NAME}{suffix}", into / f"{NAME}{suffix}")
    return into / NAME


@pytest.mark.interrupt
def test_a_mirror_switch_after_a_kill_at_40_percent_fetches_at_most_62_percent(sites, tmp_path):
    a, b = sites
    dest = tmp_path / NAME
    killed_at = kill_at(objget(a.url(), str(dest), *SLOW), dest, 0.40)
    before = served(b.log)
    out, err = finish(objget(b.url(), str(dest), "--json"))
    refetched = served(b.log) - before
    result = json.loads(out)
    print(f"killed at {killed_at / SIZE:.1%}; re-fetched from the mirror {refetched / SIZE:.1%}")
    assert refetched <= 0.62 * SIZE, f"re-fetched {refetched / SIZE:.1%} from the mirror"
    assert result["resumed_from"] == a.url() and result["source"] == b.url()
    assert result["bytes_resumed"] >= killed_at - 4 * MiB  # at most a segment per stream lost
    assert result["restarted"] is None
    assert sha256_file(dest) == sha256_file(a.root / NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


@pytest.mark.parametrize("change", ["mtime", "size"])
def test_another_object_at_the_mirror_starts_over_and_says_why(sites, partial, tmp_path, change):
    _, b = sites
    root = tmp_path / "root"
    root.mkdir()
    if change == "mtime":  # same bytes, another mtime: another ETag and Last-Modified
        shutil.copyfile(b.root / NAME, root / NAME)
    else:
        write_random(root / NAME, SIZE - 1, seed=17)
        os.utime(root / NAME, (1_700_000_000, 1_700_000_000))
    c = start_site(tmp_path, root, "c")
    try:
        dest = copy_partial(partial, tmp_path)
        _, err = finish(objget(c.url(), str(dest)))
        assert served(c.log) >= os.path.getsize(root / NAME)  # all of it again
    finally:
        c.server.stop()
    text = " ".join(err.split())
    assert "started over: the checkpoint belongs to another source (http://127.0.0.1:" in text
    assert "the object there differs" in text
    assert "another URL" not in text
    assert sha256_file(dest) == sha256_file(root / NAME)


@pytest.mark.parametrize("etag", ["weak", "missing"])
def test_a_weak_or_missing_etag_at_another_url_starts_over(sites, partial, tmp_path, etag):
    """Both runs saw the same ETag and date, but a weak ETag (or none) proves nothing about
    the bytes of two servers: the checkpoint is refused as before this change."""
    a, _ = sites
    dest = copy_partial(partial, tmp_path)
    ckpt = load(f"{dest}.objget-ckpt")
    assert ckpt is not None and isinstance(ckpt.identity["etag"], str)
    weak = "W/" + ckpt.identity["etag"]
    value = weak if etag == "weak" else None
    identity = {**ckpt.identity, "etag": value}
    save(f"{dest}.objget-ckpt", dataclasses.replace(ckpt, identity=identity))
    extra = f"etag off; add_header ETag '{weak}';" if etag == "weak" else "etag off;"
    c = start_site(tmp_path, a.root, "c", extra)
    try:
        out, err = finish(objget(c.url(), str(dest), "--json"))
        assert served(c.log) >= SIZE
    finally:
        c.server.stop()
    result = json.loads(out)
    assert result["bytes_resumed"] == 0 and result["resumed_from"] is None
    assert "another source" in result["restarted"] and "strong ETag" in result["restarted"]
    assert sha256_file(dest) == sha256_file(a.root / NAME)


def test_a_presigned_url_signed_again_resumes_and_no_query_value_is_stored(
    sites, partial, tmp_path
):
    a, _ = sites
    for path in partial.iterdir():  # the killed run's checkpoint, live record, lock
        if not path.name.endswith(".objget-part"):
            assert SECRET1.encode() not in path.read_bytes(), path.name
    dest = copy_partial(partial, tmp_path)
    resumable = ckpt_done(dest)
    again = SIGNED + SECRET2 + "&X-Amz-Security-Token=" + TOKEN  # new values, one more name
    before = served(a.log)
    _, err = finish(objget(a.url(again), str(dest)))
    assert served(a.log) - before <= SIZE - resumable + 4 * MiB
    text = " ".join(err.split())
    assert f"resumed {resumable / MiB:.1f} MiB from a checkpoint made with another URL" in text
    shown = re.search(r"another URL \((\S+); now (\S+):", text)
    assert shown is not None, text
    assert shown.group(1).startswith(f"{a.url()}?X-Amz-Algorithm=REDACTED")
    assert shown.group(2).endswith("X-Amz-Security-Token=REDACTED")
    for secret in (SECRET1, SECRET2, TOKEN):
        assert secret not in err
    assert sha256_file(dest) == sha256_file(a.root / NAME)
