"""Bad local input: corrupt, truncated, bit-flipped, wrong-version and foreign checkpoints (and
special files in their place), symlinks planted at objget's own paths, and object names that
would escape a directory destination (`..`, absolute paths, NUL).

A checkpoint objget cannot trust is reported and ignored (the download starts over and ends
byte-identical); a symlink is never followed (its target stays as it was); an unsafe name is
refused before anything is written.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import zlib
from pathlib import Path

import pytest

import objget

from ._harness import (
    MiB,
    ckpt_done,
    dest_wrong_bytes,
    kill,
    run,
    same,
    start,
    typed_error,
    wait_for,
)

SIZE = 16 * MiB
ROW_CKPT = "bad input: damaged or foreign checkpoint"
ROW_LINK = "bad input: symlink planted at objget's paths"
ROW_NAME = "bad input: unsafe names for a directory destination"


@pytest.fixture(scope="module")
def partial(web, make_object, tmp_path_factory):
    """A download of a 16 MiB object killed at >= 40 %: (url, source, dir with part + ckpt)."""
    source = make_object("local-16.bin", SIZE)
    url = f"{web.url}/local-16.bin"
    work = tmp_path_factory.mktemp("partial")
    dest = work / "local-16.bin"
    proc = start([url, dest, "-q", "--limit-rate", "8M"], work / "run.log")
    try:
        assert wait_for(lambda: ckpt_done(dest) >= 0.4 * SIZE, 60, proc=proc)
    finally:
        kill(proc)
    return url, source, work


def reencode(text: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    body = json.loads(text.split(b"\n")[0])
    change(body)
    line = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return f"{line}\n{zlib.crc32(line.encode()):08x}\n".encode()


def mutations(ckpt: bytes, n: int) -> list[tuple[str, object]]:
    rng = random.Random(3)
    out: list[tuple[str, object]] = [("empty", b""), ("garbage", rng.randbytes(300))]
    out += [(f"truncated at {k}", ckpt[:k]) for k in sorted(rng.sample(range(1, len(ckpt)), n))]
    for bit in rng.sample(range(len(ckpt) * 8), n):
        flipped = bytearray(ckpt)
        flipped[bit // 8] ^= 1 << (bit % 8)
        out.append((f"bit {bit} flipped", bytes(flipped)))
    out.append(("version 2", reencode(ckpt, lambda b: b.update(version=2))))
    out.append(("another source", reencode(ckpt, lambda b: b.update(source="http://x/y"))))
    out.append(("another ETag", reencode(ckpt, lambda b: b["object"].update(etag='"other"'))))
    out.append(("spans past the temp file", reencode(ckpt, _past_the_end)))
    out += [("a directory", "dir"), ("a FIFO", "fifo")]
    return out


def _past_the_end(body: dict) -> None:
    body["spans"] = [[0, SIZE, None]]  # claims everything; the temp file is truncated below
    body["object"]["size"] = SIZE


def test_damaged_checkpoints_are_ignored(partial, tmp_path, summary, trials):
    url, source, work = partial
    ckpt = (work / "local-16.bin.objget-ckpt").read_bytes()
    failures = []
    for i, (what, content) in enumerate(mutations(ckpt, trials(3, 12))):
        d = tmp_path / f"m{i}"
        d.mkdir()
        dest = d / "local-16.bin"
        shutil.copyfile(work / "local-16.bin.objget-part", f"{dest}.objget-part")
        path = Path(f"{dest}.objget-ckpt")
        if content == "dir":
            path.mkdir()
        elif content == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(content)  # type: ignore[arg-type]
        if what == "spans past the temp file":
            os.truncate(f"{dest}.objget-part", SIZE // 2)
        done = run([url, dest, "-q", "--json"], timeout=60)
        leftovers = sorted(p.name for p in d.iterdir())
        wrong = dest_wrong_bytes(dest, source)
        if content == "dir":  # objget does not delete a directory it did not make: exit 6
            typed = typed_error(done, 6, "Is a directory", str(path)) and path.is_dir()
            summary.trial(ROW_CKPT, typed=typed, wrong_bytes=wrong)
            if not typed or dest.exists():
                failures.append((what, done.rc, done.err[-300:], leftovers))
            continue
        ok = done.rc == 0 and same(dest, source) and leftovers == [dest.name]
        summary.trial(ROW_CKPT, correct=ok, wrong_bytes=wrong)
        if not ok:
            failures.append((what, done.rc, done.err[-300:], leftovers))
    assert not failures, failures


def victim(tmp_path: Path) -> tuple[Path, bytes, int]:
    path = tmp_path / "victim.txt"
    path.write_bytes(b"must stay exactly like this\n")
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return path, path.read_bytes(), path.stat().st_mtime_ns


SUFFIXES = (".objget-part", ".objget-ckpt", ".objget-lock", "")


@pytest.mark.parametrize("suffix", SUFFIXES, ids=["part", "ckpt", "lock", "dest"])
def test_planted_symlinks_are_not_followed(partial, tmp_path, summary, suffix):
    url, source, work = partial
    target, content, mtime = victim(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    dest = d / "local-16.bin"
    link = Path(f"{dest}{suffix}")
    link.symlink_to(target)
    dangling = Path(f"{dest}.dangling")
    done = run([url, dest, "-q"], timeout=120)
    untouched = target.read_bytes() == content and target.stat().st_mtime_ns == mtime
    if suffix == ".objget-lock":  # refusing to use a symlinked lock file is a clean outcome
        ok = done.rc == 0 and same(dest, source) or typed_error(done, 6, "symbolic links")
    else:
        ok = done.rc == 0 and same(dest, source)
    summary.trial(
        ROW_LINK,
        correct=ok and untouched and done.rc == 0,
        typed=ok and untouched,
        wrong_bytes=0 if untouched else len(content),
    )
    assert untouched, "the symlink's target was changed"
    assert ok, done.err
    # the same while resuming: the temp file swapped for a symlink to a big enough file
    if suffix == ".objget-part":
        for name in ("local-16.bin.objget-part", "local-16.bin.objget-ckpt"):
            shutil.copyfile(work / name, d / name)
        dest.unlink()
        big = tmp_path / "big-victim.bin"
        big.write_bytes(b"\xee" * SIZE)
        os.unlink(link)
        link.symlink_to(big)
        done = run([url, dest, "-q"], timeout=120)
        ok = done.rc == 0 and same(dest, source) and big.read_bytes() == b"\xee" * SIZE
        summary.trial(ROW_LINK, correct=ok, wrong_bytes=dest_wrong_bytes(dest, source))
        assert ok, done.err
    assert not dangling.exists()


UNSAFE = ["..%2F..%2Fescape.bin", "%2E%2E", "%2Ftmp%2Fobjget-escape.bin", "a%00b.bin", ".."]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_for_a_directory_destination(web, tmp_path, summary, name):
    inner = tmp_path / "a" / "b" / "dir"
    inner.mkdir(parents=True)
    done = run([f"{web.url}/{name}", f"{inner}/"], timeout=60)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    ok = typed_error(done, 2, "cannot derive a file name") and not written
    ok = ok and not Path("/tmp/objget-escape.bin").exists()
    summary.trial(ROW_NAME, typed=ok)
    assert ok, (done.rc, done.err, written)


def test_nul_in_a_destination_is_refused(web, make_object, tmp_path, summary):
    make_object("local-small.bin", 1000)
    with pytest.raises(ValueError):
        objget.download(f"{web.url}/local-small.bin", str(tmp_path / "a\x00b"))
    ok = not any(tmp_path.iterdir())
    summary.trial(ROW_NAME, typed=ok)
    assert ok


def test_batch_manifest_with_unsafe_destinations(web, make_object, tmp_path, summary):
    source = make_object("local-small.bin", 1000)
    url = f"{web.url}/local-small.bin"
    manifest = tmp_path / "m.jsonl"
    bad = ["../escape.bin", "/tmp/objget-abs.bin", "a\u0000b.bin", "x/../../escape2.bin", ""]
    lines = [{"source": url, "dest": d} for d in bad] + [{"source": url, "dest": "ok/fine.bin"}]
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out" / "inner"
    out.mkdir(parents=True)
    done = run(["--manifest", manifest, f"{out}/", "-q"], timeout=120)
    files = sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.startswith((".objget-batch", "m.jsonl"))
    )
    ok = done.rc == 8 and files == ["out/inner/ok/fine.bin"] and same(out / "ok/fine.bin", source)
    ok = ok and not Path("/tmp/objget-abs.bin").exists()
    for _ in bad:
        summary.trial(ROW_NAME, typed=ok)
    assert ok, (done.rc, done.err[-600:], files)
