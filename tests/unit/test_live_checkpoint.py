"""The live checkpoint record: codec, when it is believed, and its writer."""

import os
import zlib

import pytest

from objget._checkpoint import (
    Checkpoint,
    CheckpointInvalid,
    LiveRecord,
    Paths,
    boot_key,
    decode,
    encode,
    load,
    newest_spans,
)
from objget._plan import Span
from objget.integrity._gf2 import CrcCombiner

IDENTITY = {"size": 1000, "etag": '"abc"', "last_modified": None, "version_id": None}
CRC32 = CrcCombiner(0xEDB88320, 32)
DATA = bytes(range(256)) * 4  # 1024 bytes; the object is its first 1000


def crc(a: int, b: int) -> int:
    return zlib.crc32(DATA[a:b])


def record(spans, pending=(), boot=None, **kw) -> Checkpoint:
    base = {"source": "http://h/o", "identity": IDENTITY, "checksum": "crc32"}
    base.update(kw)
    return Checkpoint(spans=tuple(spans), pending=tuple(pending), boot=boot, **base)


def test_a_live_record_round_trips_with_its_boot_and_pending_segments():
    live = record([Span(0, 100, crc(0, 100))], [Span(100, 150, crc(100, 150))], boot="b:1")
    assert decode(encode(live)) == live


def test_a_durable_record_has_no_boot_and_no_pending_field():
    text = encode(record([Span(0, 10, 1)], pending=[Span(10, 20, 2)])).decode()
    assert "boot" not in text and "pending" not in text
    assert decode(text.encode()).pending == ()


@pytest.mark.parametrize(
    "pending",
    [
        [Span(50, 150, 1), Span(100, 200, 2)],  # overlapping each other
        [Span(300, 200, 1)],  # empty / reversed
        [Span(900, 1001, 1)],  # beyond the size
        [Span(200, 300, 1), Span(100, 150, 2)],  # unsorted
    ],
)
def test_bad_pending_segments_make_the_record_invalid(pending):
    with pytest.raises(CheckpointInvalid):
        decode(encode(record([], pending, boot="b:1")))


def test_pending_segments_may_touch_each_other():
    live = record([], [Span(0, 10, crc(0, 10)), Span(10, 20, crc(10, 20))], boot="b:1")
    assert decode(encode(live)).pending == live.pending


def test_the_live_record_wins_on_the_same_boot_and_its_crcs_are_combined():
    durable = record([Span(0, 100, crc(0, 100))])
    live = record(
        [Span(0, 200, crc(0, 200))],
        [Span(200, 260, crc(200, 260)), Span(500, 520, crc(500, 520))],
        boot="b:1",
    )
    got = newest_spans(durable, live, "b:1", CRC32.combine)
    assert got == (Span(0, 260, crc(0, 260)), Span(500, 520, crc(500, 520)))


@pytest.mark.parametrize(
    ("live", "boot"),
    [
        (None, "b:1"),
        (record([Span(0, 500, 1)], boot="b:1"), None),  # no boot id here
        (record([Span(0, 500, 1)], boot="b:0"), "b:1"),  # another boot (or mount)
        (record([Span(0, 500, 1)]), "b:1"),  # not a live record
        (record([Span(0, 500, 1)], boot="b:1", source="http://h/other"), "b:1"),
        (record([Span(0, 500, 1)], boot="b:1", checksum=None), "b:1"),
        (record([Span(0, 500, 1)], boot="b:1", identity={**IDENTITY, "etag": '"x"'}), "b:1"),
        (record([Span(0, 50, 1)], boot="b:1"), "b:1"),  # older than the durable record
        (record([Span(10, 500, 1)], boot="b:1"), "b:1"),  # does not cover it
        (record([Span(0, 500, 1)], [Span(400, 600, 2)], boot="b:1"), "b:1"),  # overlap
    ],
)
def test_otherwise_the_durable_record_is_used(live, boot):
    durable = record([Span(0, 100, 7)])
    assert newest_spans(durable, live, boot, CRC32.combine) == durable.spans


def test_covering_checks_every_durable_span():
    durable = record([Span(0, 100, 1), Span(300, 400, 2)])
    assert newest_spans(durable, record([Span(0, 200, 3)], boot="k"), "k", None) == durable.spans
    ok = record([Span(0, 200, None), Span(250, 450, None)], boot="k")
    assert newest_spans(durable, ok, "k", None) == ok.spans


def test_the_writer_overwrites_in_place_and_truncates_a_shorter_record(tmp_path):
    paths = Paths.beside(str(tmp_path / "f"))
    writer = LiveRecord(paths.live)
    long = record([Span(i * 10, i * 10 + 5, None) for i in range(50)], boot="k")
    short = record([Span(0, 5, None)], boot="k")
    writer.write(long)
    assert load(paths.live) == long
    writer.write(short)
    assert load(paths.live) == short
    assert os.stat(paths.live).st_mode & 0o777 == 0o600
    writer.close(remove=False)
    assert load(paths.live) == short
    LiveRecord(paths.live).close(remove=True)
    assert not os.path.exists(paths.live)


def test_the_writer_replaces_a_planted_symlink_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    paths = Paths.beside(str(tmp_path / "f"))
    os.symlink(target, paths.live)
    writer = LiveRecord(paths.live)
    writer.write(record([], boot="k"))
    writer.close(remove=False)
    assert target.read_text() == "keep"
    assert not os.path.islink(paths.live)


def test_boot_key_names_the_boot_and_the_filesystem(tmp_path):
    part = tmp_path / "f.objget-part"
    assert boot_key(str(part)) is None  # no data file yet
    part.write_bytes(b"")
    key = boot_key(str(part))
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        with open("/proc/sys/kernel/random/boot_id") as f:
            assert key == f"{f.read().strip()}:{os.stat(part).st_dev}"
    else:  # pragma: no cover - not Linux
        assert key is None
