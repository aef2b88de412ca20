"""Resuming a checkpoint made with another source (`objget.engine._recover.resume_point`): a mirror,
another endpoint, a presigned URL signed again. Resumed only when the object is provably the
same (size, strong ETag, Last-Modified); else a fresh start, with the reason."""

import os
import zlib

import pytest

from objget._models import DownloadResult, ObjectMeta
from objget.cli._console import summary
from objget.engine._checkpoint import Paths, save
from objget.engine._checkpoint_record import Checkpoint
from objget.engine._plan import Span
from objget.engine._recover import resume_point

SIZE = 1000
LM = "Fri, 04 Dec 2026 08:00:00 GMT"
ETAG = '"5f1e2d3c-3e8"'
OLD = "http://127.0.0.1:8001/big.bin"
NEW = "http://127.0.0.1:8002/big.bin"
LIVE = ("crc32", lambda crc, data: zlib.crc32(data, crc))


def meta(**change: object) -> ObjectMeta:
    fields: dict[str, object] = {"size": SIZE, "etag": ETAG, "last_modified": LM}
    fields.update(change)
    return ObjectMeta(**fields)  # type: ignore[arg-type]


@pytest.fixture
def paths(tmp_path):
    return Paths.beside(str(tmp_path / "big.bin"))


def checkpoint(paths: Paths, saved: ObjectMeta, *, source: str = OLD) -> None:
    with open(paths.part, "wb") as f:
        f.write(bytes(range(256)) * 2)  # 512 bytes on disk
    save(
        paths.checkpoint,
        Checkpoint(
            source=source,
            identity=saved.identity(),
            checksum=None,
            spans=(Span(0, 400),),
            run="r" * 32,
        ),
    )


def resume(paths: Paths, now: ObjectMeta, display: str = NEW):
    return resume_point(
        paths, meta=now, display=display, checksummer=None, ranged=True, restart=False, crc=LIVE
    )


def test_another_url_for_the_same_object_resumes_and_names_the_old_one(paths):
    checkpoint(paths, meta())
    got = resume(paths, meta())
    assert got.restarted is None
    assert got.spans == (Span(0, 400),)
    assert got.run == "r" * 32
    assert got.moved_from == OLD
    assert os.path.exists(paths.part) and os.path.exists(paths.checkpoint)


def test_the_same_url_is_not_a_move(paths):
    checkpoint(paths, meta(), source=NEW)
    got = resume(paths, meta())
    assert got.spans == (Span(0, 400),) and got.moved_from is None


@pytest.mark.parametrize(
    "change",
    [
        {"etag": '"5f1e2d3c-3e9"'},
        {"size": SIZE + 1},
        {"last_modified": "Fri, 04 Dec 2026 08:00:01 GMT"},
        {"version_id": "v2"},
    ],
)
def test_another_url_for_another_object_starts_fresh_saying_why(paths, change):
    checkpoint(paths, meta())
    got = resume(paths, meta(**change))
    assert got.spans == () and got.moved_from is None
    assert got.restarted is not None
    assert "another source" in got.restarted and OLD in got.restarted
    assert "differs" in got.restarted
    assert not os.path.exists(paths.part) and not os.path.exists(paths.checkpoint)


@pytest.mark.parametrize(
    "change",
    [{"etag": 'W/"5f1e2d3c-3e8"'}, {"etag": None}, {"last_modified": None}],
    ids=["weak-etag", "no-etag", "no-last-modified"],
)
def test_without_a_strong_etag_and_a_date_another_url_is_refused(paths, change):
    checkpoint(paths, meta(**change))  # the same identity on both sides, but it proves nothing
    got = resume(paths, meta(**change))
    assert got.spans == () and got.moved_from is None
    assert got.restarted is not None and "another source" in got.restarted
    assert "strong ETag" in got.restarted
    assert not os.path.exists(paths.part)


@pytest.mark.parametrize(
    "change", [{"etag": 'W/"5f1e2d3c-3e8"'}, {"etag": None}], ids=["weak-etag", "no-etag"]
)
def test_the_same_url_with_a_weak_or_no_etag_resumes_as_before(paths, change):
    checkpoint(paths, meta(**change), source=NEW)
    got = resume(paths, meta(**change))
    assert got.restarted is None and got.spans == (Span(0, 400),)


def test_a_planted_source_is_shown_printable_and_short():
    from objget.engine._recover import shown

    assert shown("http://a/\x1b[31mred\n") == "http://a/?[31mred?"
    long = "x" * 1000
    assert shown(long) == "x" * 300 + "..."
    planted = "https://user:pw@h/k?X-Amz-Signature=s3cret&versionId=v1"
    assert shown(planted) == "https://REDACTED@h/k?X-Amz-Signature=REDACTED&versionId=v1"
    already = "http://h:1/k?X-Amz-Date=REDACTED&X-Amz-Signature=REDACTED"
    assert shown(already) == already


def result(**change: object) -> DownloadResult:
    fields: dict[str, object] = {
        "path": "big.bin", "source": NEW, "size": 100 * 1024 * 1024, "etag": ETAG,
        "version_id": None, "verified": ("size",), "bytes_fetched": 60 * 1024 * 1024,
        "bytes_resumed": 40 * 1024 * 1024, "elapsed": 1.0, "retries": 0,
    }  # fmt: skip
    fields.update(change)
    return DownloadResult(**fields)  # type: ignore[arg-type]


def test_the_summary_names_both_urls_when_resumed_from_another():
    text = summary(result(resumed_from=OLD))
    assert (
        f"resumed 40.0 MiB from a checkpoint made with another URL ({OLD}; now {NEW}: the "
        "same size, ETag and Last-Modified), fetched 60.0 MiB"
    ) in text
    assert result(resumed_from=OLD).to_dict()["resumed_from"] == OLD


def test_the_summary_of_a_resume_from_the_same_url_is_unchanged():
    text = summary(result())
    assert "resumed 40.0 MiB from an earlier run, fetched 60.0 MiB" in text
    assert "another URL" not in text
    assert result().to_dict()["resumed_from"] is None
