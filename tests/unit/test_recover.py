"""Confirming a live record's segments in the data file (`objget.engine._recover`)."""

import os
import shutil
import tempfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objget.engine._checkpoint import Paths, save
from objget.engine._checkpoint_record import Checkpoint
from objget.engine._live import LiveRecord, LiveTag, boot_id, tag_for
from objget.engine._plan import Span
from objget.engine._recover import confirm_segments, resume_spans
from objget.integrity._gf2 import CrcCombiner

CRC32 = CrcCombiner(0xEDB88320, 32)
SIZE = 64 * 1024
LIVE = ("crc32", lambda crc, data: zlib.crc32(data, crc))


def crc_update(crc: int, data: memoryview) -> int:
    return zlib.crc32(data, crc)


BODY = bytes((i * 7 + 3) % 251 + 1 for i in range(SIZE))  # never zero


def seg(a: int, b: int, data: bytes = BODY) -> Span:
    return Span(a, b, zlib.crc32(data[a:b]))


@pytest.fixture
def part(tmp_path):
    path = tmp_path / "f.objget-part"
    path.write_bytes(BODY)
    fd = os.open(path, os.O_RDONLY)
    yield path, fd
    os.close(fd)


def confirm(fd, durable, segments):
    return confirm_segments(
        fd, durable, segments, live_update=crc_update, update=None, combine=None
    )


def test_segments_that_read_back_are_kept(part):
    _, fd = part
    spans, kept = confirm(fd, [Span(0, 100)], [seg(100, 5000), seg(5000, 9000), seg(20000, 30000)])
    assert spans == (Span(0, 9000), Span(20000, 30000))
    assert kept == (seg(100, 5000), seg(5000, 9000), seg(20000, 30000))


def test_one_wrong_byte_drops_its_segment_only(part):
    path, fd = part
    with open(path, "r+b") as f:
        f.seek(5001)
        f.write(b"\x00")
    spans, kept = confirm(fd, [], [seg(0, 5000), seg(5000, 9000), seg(9000, 9001)])
    assert spans == (Span(0, 5000), Span(9000, 9001))
    assert kept == (seg(0, 5000), seg(9000, 9001))


def test_a_segment_past_the_end_of_the_file_is_dropped(part):
    _, fd = part
    beyond = Span(SIZE - 10, SIZE + 10, zlib.crc32(BODY[-10:] + bytes(10)))
    assert confirm(fd, [], [beyond]) == ((), ())


def test_a_segment_inside_the_durable_spans_is_not_read(part):
    _, fd = part
    wrong = Span(10, 20, 12345)  # would fail if read
    assert confirm(fd, [Span(0, 100, 9)], [wrong]) == ((Span(0, 100, 9),), ())


def test_a_segment_across_a_durable_span_is_checked_whole_and_adds_its_holes(part):
    _, fd = part
    durable = [Span(1000, 2000, zlib.crc32(BODY[1000:2000]))]
    spans, kept = confirm_segments(
        fd, durable, [seg(500, 3000)], live_update=crc_update, update=crc_update, combine=None
    )
    assert kept == (seg(500, 3000),)
    # without combine the touching spans merge with no CRC; the holes' CRCs are checked below
    assert spans == (Span(500, 3000, None),)
    spans, _ = confirm_segments(
        fd,
        durable,
        [seg(500, 3000)],
        live_update=crc_update,
        update=crc_update,
        combine=CRC32.combine,
    )
    assert spans == (Span(500, 3000, zlib.crc32(BODY[500:3000])),)


def test_with_a_store_crc_the_kept_bytes_get_it_from_the_file(part):
    _, fd = part
    spans, _ = confirm_segments(
        fd,
        [Span(0, 100, zlib.crc32(BODY[:100]))],
        [seg(100, 40000)],
        live_update=crc_update,
        update=crc_update,
        combine=CRC32.combine,
    )
    assert spans == (Span(0, 40000, zlib.crc32(BODY[:40000])),)


# --- resume_spans: which live record is read at all --------------------------------------


@pytest.fixture
def setup(tmp_path):
    if boot_id() is None:  # pragma: no cover - not Linux
        pytest.skip("no boot id on this system: live records are never written")
    paths = Paths.beside(str(tmp_path / "f"))
    with open(paths.part, "wb") as f:
        f.write(BODY)
    ident = {"size": SIZE, "etag": '"e"', "last_modified": None, "version_id": None}
    durable = Checkpoint(
        source="http://h/o", identity=ident, checksum=None, spans=(Span(0, 100),), run="run-1"
    )
    save(paths.checkpoint, durable)
    return paths, durable


def write_live(paths: Paths, segments, **change) -> None:
    fd = os.open(paths.part, os.O_RDONLY)
    try:
        tag = tag_for(fd, run="run-1", crc="crc32")
    finally:
        os.close(fd)
    assert tag is not None
    fields = {f: getattr(tag, f) for f in ("run", "boot", "device", "inode", "crc")}
    writer = LiveRecord(paths.live, LiveTag(**{**fields, **change}))
    writer.arm()
    writer.open(lambda: tuple(segments), slots=2)
    writer.close(remove=False)


def test_resume_spans_keeps_the_segments_of_its_own_live_record(setup):
    paths, durable = setup
    write_live(paths, [seg(100, 9000), seg(9000, 20000)])
    got = resume_spans(paths, durable, None, crc=LIVE)
    assert got.spans == (Span(0, 20000),) and got.run == "run-1"
    assert got.live == (seg(100, 9000), seg(9000, 20000))


@pytest.mark.parametrize(
    "change",
    [
        {"run": "run-0"},  # an earlier run's record
        {"inode": 1},  # written for another data file
        {"device": 1},
        {"boot": "another-boot"},
        {"crc": "crc64xz"},  # another segment CRC
    ],
)
def test_a_record_for_another_run_file_boot_or_crc_is_ignored(setup, change):
    paths, durable = setup
    write_live(paths, [seg(100, 9000)], **change)
    got = resume_spans(paths, durable, None, crc=LIVE)
    assert got.spans == durable.spans and got.live == ()


def test_a_copy_of_the_data_file_is_another_file(setup):
    paths, durable = setup
    write_live(paths, [seg(100, 9000)])
    shutil.copyfile(paths.part, paths.part + ".copy")
    os.replace(paths.part + ".copy", paths.part)  # same bytes, another inode
    assert resume_spans(paths, durable, None, crc=LIVE).spans == durable.spans


def test_a_checkpoint_without_a_run_id_believes_no_live_record(setup):
    paths, durable = setup
    write_live(paths, [seg(100, 9000)])
    old = Checkpoint(
        source=durable.source, identity=durable.identity, checksum=None, spans=durable.spans
    )
    assert resume_spans(paths, old, None, crc=LIVE).spans == durable.spans


def test_segments_beyond_the_object_size_are_ignored(setup):
    paths, durable = setup
    write_live(paths, [Span(SIZE - 10, SIZE + 10, 1)])
    assert resume_spans(paths, durable, None, crc=LIVE).spans == durable.spans


def test_a_fifo_at_the_data_file_is_not_opened_for_reading(setup):
    paths, durable = setup
    write_live(paths, [seg(100, 9000)])
    os.unlink(paths.part)
    os.mkfifo(paths.part)  # a blocking open would hang here
    assert resume_spans(paths, durable, None, crc=LIVE).spans == durable.spans


def test_of_segments_that_begin_at_one_byte_the_longest_that_reads_back_is_kept(part):
    """A slot's segment and an earlier entry for its first bytes overlap: the longer is kept
    when it reads back; else the shorter (the bytes after it were damaged)."""
    path, fd = part
    spans, kept = confirm(fd, [], [seg(100, 900), seg(100, 5000)])
    assert spans == (Span(100, 5000),) and kept == (seg(100, 5000),)
    with open(path, "r+b") as f:
        f.seek(2000)
        f.write(b"\0")
    spans, kept = confirm(fd, [], [seg(100, 900), seg(100, 5000)])
    assert spans == (Span(100, 900),) and kept == (seg(100, 900),)


@st.composite
def layouts(draw):
    """Durable spans, live segments (not all inside them) and damaged offsets outside them."""
    size = 3000
    cuts = sorted(set(draw(st.lists(st.integers(0, size), max_size=12))))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    durable = [Span(a, b) for a, b in pairs if draw(st.booleans())]
    cuts = sorted(set(draw(st.lists(st.integers(0, size), min_size=2, max_size=12))))
    segments = [seg(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if draw(st.booleans())]
    for s in list(segments):  # an entry for the first bytes of a segment (from its slot)
        if s.stop - s.start > 1 and draw(st.booleans()):
            segments.append(seg(s.start, draw(st.integers(s.start + 1, s.stop - 1))))
    covered = {i for s in durable for i in range(s.start, s.stop)}
    free = [i for i in range(size) if i not in covered]
    damaged = draw(st.sets(st.sampled_from(free), max_size=5)) if free else set()
    return durable, segments, damaged


@given(layouts())
@settings(max_examples=60, deadline=None)
def test_every_byte_resumed_from_a_live_segment_is_right(layout):
    durable, segments, damaged = layout
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "part")
        body = bytearray(BODY)
        for i in damaged:
            body[i] ^= 0xFF
        with open(path, "wb") as f:
            f.write(body)
        fd = os.open(path, os.O_RDONLY)
        try:
            spans, kept = confirm(fd, durable, segments)
        finally:
            os.close(fd)
    for s in spans:
        assert body[s.start : s.stop] == BODY[s.start : s.stop]
    whole = {i for s in spans for i in range(s.start, s.stop)}
    on_disk = {i for s in durable for i in range(s.start, s.stop)}
    assert on_disk <= whole
    assert all(a.stop <= b.start for a, b in zip(kept, kept[1:], strict=False))
    for s in segments:
        intact = not any(s.start <= i < s.stop for i in damaged)
        adds = any(i not in on_disk for i in range(s.start, s.stop))
        longer = [o for o in segments if o.start == s.start and o.stop > s.stop]
        longer_intact = any(not any(o.start <= i < o.stop for i in damaged) for o in longer)
        assert (s in kept) == (intact and adds and not longer_intact)
        if intact:
            assert all(i in whole for i in range(s.start, s.stop))
