"""The SQLite journal, the manifest reader, and the skip rules of a re-run."""

import json
import os

import pytest

from objget import CheckpointError, LockedError
from objget.batch import read_manifest
from objget.engine._dirs import ParentMaker
from objget.engine._fileio import file_state
from objget.many._batch_journal import Journal, Row
from objget.many._batch_skip import classify, same_etag
from objget.many._batch_sources import Planned


def running(dest, source, size, etag, pre):
    return Row(dest=dest, source=source, state="running", size=size, etag=etag, pre=pre)


def done(dest, source, *, size, etag, version_id):
    return Row(dest=dest, source=source, state="done", size=size, etag=etag, version_id=version_id)


def failed(dest, source, *, kind, error):
    return Row(dest=dest, source=source, state="failed", error=error, error_kind=kind)


def test_rows_roundtrip_and_survive_reopening(tmp_path):
    with Journal(str(tmp_path)) as j:
        j.put([running("a", "s3://b/a", 3, '"e"', (5, 6))])
        j.put([running("b", "s3://b/b", 1, None, None)])
        j.put([done("b", "s3://b/b", size=1, etag='"f"', version_id="v1")])
        j.put([failed("c", "s3://b/c", kind="access-denied", error="403")])
    with Journal(str(tmp_path)) as j:
        rows = j.rows()
    assert rows["a"].state == "running" and rows["a"].pre == (5, 6)
    assert rows["b"].state == "done" and rows["b"].etag == '"f"' and rows["b"].version_id == "v1"
    assert rows["c"].state == "failed" and rows["c"].error_kind == "access-denied"


def _all(j):
    cols = "dest, source, state, size, etag, version_id, pre_ino, pre_mtime, error, error_kind"
    return sorted(j._db.execute(f"SELECT {cols}, attempts FROM objects"))


def test_each_state_change_leaves_exactly_the_new_states_columns(tmp_path):
    """Through every sequence a batch and its re-runs go through, a row holds what its last
    change said and nothing of the states before; each `running` counts one attempt."""
    with Journal(str(tmp_path)) as j:
        j.put([running("a", "s3://b/a", 3, '"e"', (5, 6))])
        j.put([done("a", "s3://b/a2", size=3, etag='"e2"', version_id="v1")])
        assert _all(j) == [("a", "s3://b/a2", "done", 3, '"e2"', "v1", None, None, None, None, 1)]
        j.put([running("a", "s3://b/a", 4, None, None)])
        j.put([failed("a", "s3://b/a", kind="network", error="reset")])
        assert _all(j) == [
            ("a", "s3://b/a", "failed", None, None, None, None, None, "reset", "network", 2)
        ]
        j.put([running("a", "s3://b/a", 4, '"x"', (7, 8))])
        assert _all(j) == [("a", "s3://b/a", "running", 4, '"x"', None, 7, 8, None, None, 3)]
        j.put([done("b", "s3://b/b", size=9, etag=None, version_id="v")])  # no running row first
        assert _all(j)[1] == ("b", "s3://b/b", "done", 9, None, "v", None, None, None, None, 0)


def test_one_put_of_a_group_writes_what_one_put_per_object_writes(tmp_path):
    """`put` of a group (one statement) leaves the rows one `put` per object leaves,
    including a `done` for an object that has no row yet."""
    (tmp_path / "many").mkdir()
    (tmp_path / "one").mkdir()
    started = [running("a", "s3://b/a", 3, '"e"', (5, 6)), running("c", "s3://b/c", 1, None, None)]
    finished = [done("a", "s3://b/a", size=3, etag='"e"', version_id="v1"),
                done("b", "s3://b/b", size=2, etag='"f"', version_id=None)]  # fmt: skip
    with Journal(str(tmp_path / "many")) as many, Journal(str(tmp_path / "one")) as one:
        for rows in (started, finished):
            many.put(rows)
            for r in rows:
                one.put([r])
        assert _all(many) == _all(one)
        assert [r[2] for r in _all(many)] == ["done", "done", "running"]


def test_a_second_batch_on_the_same_directory_is_locked_out(tmp_path):
    with Journal(str(tmp_path)), pytest.raises(LockedError):
        Journal(str(tmp_path))


def test_a_corrupt_journal_is_a_clear_error(tmp_path):
    (tmp_path / ".objget-batch.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(CheckpointError, match="delete it"):
        Journal(str(tmp_path))


def test_readonly_journal_of_a_missing_directory_is_empty(tmp_path):
    with Journal(str(tmp_path / "nope"), readonly=True) as j:
        assert j.rows() == {}


def test_remove_leaves_an_empty_directory_and_a_new_journal_can_start(tmp_path):
    (tmp_path / "obj.bin").write_bytes(b"x")
    with Journal(str(tmp_path)) as j:
        j.put([done("obj.bin", "s3://b/obj.bin", size=1, etag='"e"', version_id=None)])
        assert (tmp_path / ".objget-batch.lock").exists()
        j.remove()
        assert not j.writable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.bin"]
    with Journal(str(tmp_path)) as j:  # a new, empty journal; nothing left of the old one
        assert j.rows() == {}


def test_remove_takes_the_side_files_first_and_the_lock_last(tmp_path, monkeypatch):
    """An old WAL must never sit beside a new database (SQLite would replay it): the WAL and
    shm files go, a directory fsync, then the database, then the lock, then a fsync; the lock
    is held until the database is gone."""
    import objget.many._batch_journal as bj

    steps: list[str] = []
    real_remove = bj.remove_quietly
    monkeypatch.setattr(bj, "fsync_dir", lambda d: steps.append("fsync"))

    def remove(path):
        steps.append(os.path.basename(path))
        real_remove(path)

    monkeypatch.setattr(bj, "remove_quietly", remove)
    with Journal(str(tmp_path)) as j:
        j.put([done("a", "s3://b/a", size=1, etag=None, version_id=None)])
        lock = j._lock
        real_release = lock.release

        def release(*, remove):
            assert not (tmp_path / ".objget-batch.db").exists()  # held until the db is gone
            steps.append("lock")
            real_release(remove=remove)

        monkeypatch.setattr(lock, "release", release)
        j.remove()
    assert steps == [
        ".objget-batch.db-wal", ".objget-batch.db-shm", ".objget-batch.db-journal", "fsync",
        ".objget-batch.db", "lock", "fsync",
    ]  # fmt: skip
    assert not any(p.name.startswith(".objget-batch") for p in tmp_path.iterdir())


def test_remove_of_a_readonly_journal_is_refused(tmp_path):
    with Journal(str(tmp_path)):
        pass
    with Journal(str(tmp_path), readonly=True) as j, pytest.raises(CheckpointError):
        j.remove()


def _same_and_touched(tmp_path):
    """Two files of 3 bytes: "same" with the listed LastModified as mtime, "touched" with
    another; returns how a listing would describe a key (3 bytes, that LastModified)."""
    when = "2024-05-06T07:08:09.000Z"
    (tmp_path / "same").write_bytes(b"abc")
    os.utime(tmp_path / "same", (1714979289, 1714979289))
    (tmp_path / "touched").write_bytes(b"abc")

    def listed(rel):
        return Planned(source=f"s3://b/{rel}", rel=rel, backend=None, key=rel, size=3,  # type: ignore[arg-type]
                       etag='"e"', last_modified=when)  # fmt: skip

    return listed


def test_classify_skips_up_to_date_files_without_a_journal_row_and_a_dry_run_writes_nothing(
    tmp_path,
):
    """The re-run of a batch whose journal was removed: size + mtime (the listed
    LastModified) decide, no request; the read-only journal of a dry run is not written."""
    listed = _same_and_touched(tmp_path)
    plan = [listed("same"), listed("touched"), listed("absent")]
    with Journal(str(tmp_path), readonly=True) as j:  # a dry run: no journal there
        todo, skipped = classify(plan, j.rows(), str(tmp_path), j)
    assert [s.path for s in skipped] == [str(tmp_path / "same")]
    assert [p.rel for p in todo] == ["touched", "absent"]
    assert not (tmp_path / ".objget-batch.db").exists()


def test_same_etag():
    assert same_etag('"ABC"', "abc") and same_etag('W/"x"', '"x"')
    assert not same_etag(None, None) and not same_etag('"a"', '"b"')


def _planned(rel, size, etag):
    return Planned(source=f"s3://b/{rel}", rel=rel, backend=None, key=rel, size=size, etag=etag)  # type: ignore[arg-type]


def test_classify_skips_unchanged_done_objects_without_a_request(tmp_path):
    (tmp_path / "same").write_bytes(b"abc")
    (tmp_path / "changed").write_bytes(b"abc")
    (tmp_path / "short").write_bytes(b"ab")
    with Journal(str(tmp_path)) as j:
        for rel in ("same", "changed", "short", "gone"):
            j.put([done(rel, f"s3://b/{rel}", size=3, etag='"e"', version_id=None)])
        plan = [
            _planned("same", 3, '"e"'),
            _planned("changed", 3, '"new"'),
            _planned("short", 3, '"e"'),
            _planned("gone", 3, '"e"'),
            _planned("new", 3, '"e"'),
        ]
        todo, skipped = classify(plan, j.rows(), str(tmp_path), j)
    assert [s.path for s in skipped] == [str(tmp_path / "same")]
    assert [p.rel for p in todo] == ["changed", "short", "gone", "new"]


def test_classify_recognises_a_commit_the_killed_run_did_not_journal(tmp_path):
    old = tmp_path / "old"
    old.write_bytes(b"abc")
    before = file_state(str(old))
    with Journal(str(tmp_path)) as j:
        j.put([running("old", "s3://b/old", 3, '"e"', before[:2])])
        j.put([running("fresh", "s3://b/fresh", 3, '"e"', None)])
        j.put([running("partial", "s3://b/partial", 3, '"e"', None)])
        # "fresh" was committed by the dead run; "old" still has its old file; "partial" has
        # temp data beside it
        (tmp_path / "fresh").write_bytes(b"xyz")
        (tmp_path / "partial").write_bytes(b"xyz")
        (tmp_path / "partial.objget-part").write_bytes(b"x")
        plan = [_planned(rel, 3, '"e"') for rel in ("old", "fresh", "partial")]
        todo, skipped = classify(plan, j.rows(), str(tmp_path), j)
        assert [s.path for s in skipped] == [str(tmp_path / "fresh")]
        assert [p.rel for p in todo] == ["old", "partial"]
        assert j.rows()["fresh"].state == "done"


def test_manifest_lines_and_jsonl(tmp_path):
    m = tmp_path / "m.txt"
    sha = "ab" * 32
    m.write_text(
        "# comment\n\nhttps://h/x/a.bin\n"
        + json.dumps(
            {"source": "s3://b/k", "dest": "d/k", "sha256": sha.upper(), "version_id": "v"}
        )
        + "\n"
    )
    items = read_manifest(m)
    assert items[0].source == "https://h/x/a.bin" and items[0].dest is None
    assert (items[1].dest, items[1].sha256, items[1].version_id) == ("d/k", sha, "v")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{not json", "not valid JSON"),
        ('{"dest": "x"}', "needs a string 'source'"),
        ('{"source": "s3://b/k", "sha256": "zz"}', "64 hex"),
        ('{"source": "s3://b/k", "extra": 1}', "unknown fields"),
    ],
)
def test_manifest_errors_name_the_line(tmp_path, line, why):
    m = tmp_path / "m.jsonl"
    m.write_text("s3://b/ok\n" + line + "\n")
    with pytest.raises(ValueError, match=f"line 2: .*{why}"):
        read_manifest(m)


def test_file_state_ignores_symlinks_and_directories(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink("/etc/passwd", tmp_path / "l")
    assert file_state(str(tmp_path / "d")) is None
    assert file_state(str(tmp_path / "l")) is None


def test_classify_lists_a_directory_once_instead_of_an_lstat_per_absent_object(
    tmp_path, monkeypatch
):
    """With the directories' listings (`ParentMaker.names`), an object whose name its
    directory did not hold is downloaded without a look at its destination; names that are
    there get the usual rules (same results as without it), and a directory that does not
    exist holds nothing."""
    from objget.many import _batch_skip

    listed = _same_and_touched(tmp_path)
    plan = [listed(r) for r in ("same", "touched", "absent", "new/a", "new/b")]
    looked: list[str] = []
    real = _batch_skip.up_to_date

    def counting(dest, **kw):
        looked.append(os.path.relpath(dest, tmp_path))
        return real(dest, **kw)

    monkeypatch.setattr(_batch_skip, "up_to_date", counting)
    names = ParentMaker(str(tmp_path))
    with Journal(str(tmp_path), readonly=True) as j:
        todo, skipped = classify(plan, j.rows(), str(tmp_path), j, names)
        assert [s.path for s in skipped] == [str(tmp_path / "same")]
        assert [p.rel for p in todo] == ["touched", "absent", "new/a", "new/b"]
        assert looked == ["same", "touched"]
        looked.clear()
        assert classify(plan, j.rows(), str(tmp_path), j)[0] == todo  # the same without it
        assert looked == ["same", "touched", "absent", "new/a", "new/b"]


def test_dir_names_keeps_no_listing_of_a_huge_directory(tmp_path):
    """Past `most` entries a directory is not kept: its names are looked at one by one."""
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"")
    (tmp_path / "small").mkdir()
    names = ParentMaker(str(tmp_path), most=4)
    assert names.names("nothing-here") is None  # not listed
    assert names.names("small/x") == frozenset() == names.names("missing/x")
    (tmp_path / "small" / "y").write_bytes(b"")
    assert names.names("small/y") == frozenset()  # listed once, at first asked
    assert "f4" in ParentMaker(str(tmp_path), most=6).names("f4")  # 5 files and small/
    assert names.path("small/y") == str(tmp_path / "small" / "y")  # made by the first look
