"""The live record (`objget.engine._live`): codec, versioning, its writer, and the writer
against the saver thread closing it."""

import json
import os
import threading
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget.engine import _live
from objget.engine._checkpoint import CheckpointInvalid, Paths
from objget.engine._live import (
    Live,
    LiveRecord,
    LiveTag,
    boot_id,
    decode_live,
    encode_live,
    load_live,
    new_run,
    segment_crc,
    tag_for,
)
from objget.engine._plan import Span

TAG = LiveTag(run="r" * 32, boot="b", device=5, inode=7, crc="crc32")


def frame(body) -> bytes:
    text = json.dumps(body)
    return f"{text}\n{zlib.crc32(text.encode()):08x}\n".encode()


@st.composite
def lives(draw):
    cuts = sorted(set(draw(st.lists(st.integers(0, 10**12), max_size=20))))
    segments = [
        Span(a, b, draw(st.integers(0, 2**64 - 1)))
        for a, b in zip(cuts, cuts[1:], strict=False)
        if draw(st.booleans())
    ]
    return Live(tag=TAG, segments=tuple(segments))


def head_size(raw: bytes) -> int:
    """Where the slots begin: the page after the tag's frame."""
    end = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    return -(-end // _live.PAGE) * _live.PAGE


@given(lives())
def test_a_live_record_round_trips(live):
    assert decode_live(encode_live(live)) == live


def test_slots_and_log_entries_are_segments_alike():
    live = Live(tag=TAG, segments=(Span(0, 10, 1), Span(10, 20, 2)))
    raw = encode_live(live, slots=(None, Span(20, 25, 3), None))
    assert head_size(raw) == _live.PAGE and len(raw) == _live.PAGE + 5 * _live.ENTRY
    assert decode_live(raw).segments == (Span(0, 10, 1), Span(10, 20, 2), Span(20, 25, 3))


def test_overlapping_and_repeated_segments_are_kept_once_each():
    """A slot's segment and an earlier log entry for its first bytes begin at one byte; a
    finished segment is in its slot and in the log."""
    live = Live(tag=TAG, segments=(Span(0, 10, 1), Span(0, 20, 2)))
    raw = encode_live(live, slots=(Span(0, 20, 2),))
    assert decode_live(raw).segments == (Span(0, 10, 1), Span(0, 20, 2))


@given(lives(), st.data())
def test_a_damaged_tag_makes_the_record_invalid(live, data):
    raw = bytearray(encode_live(live))
    frame_end = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    i = data.draw(st.integers(0, frame_end - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CheckpointInvalid):
        decode_live(bytes(raw))
    with pytest.raises(CheckpointInvalid):
        decode_live(bytes(raw[: data.draw(st.integers(0, frame_end - 1))]))


@given(lives(), st.data())
def test_a_torn_or_damaged_entry_costs_that_segment_only(live, data):
    """A kill inside the write of a slot or entry, or any damage to one, drops its segment;
    the others stay; a cut record keeps its whole entries."""
    if not live.segments:
        return
    raw = bytearray(encode_live(live))
    first = head_size(bytes(raw))
    k = data.draw(st.integers(0, len(live.segments) - 1))
    at = first + k * _live.ENTRY + data.draw(st.integers(0, _live.ENTRY - 5))  # not the padding
    raw[at] ^= 1 << data.draw(st.integers(0, 7))
    others = tuple(s for i, s in enumerate(live.segments) if i != k)
    assert decode_live(bytes(raw)).segments == others
    cut = data.draw(st.integers(first, len(raw)))
    whole = (cut - first) // _live.ENTRY
    got = decode_live(encode_live(live)[:cut]).segments
    assert got == live.segments[:whole]


def test_an_older_objgets_live_record_is_simply_invalid():
    old = {  # version 1: the durable checkpoint's format with boot and pending segments
        "format": "objget-checkpoint",
        "version": 1,
        "source": "http://h/o",
        "object": {"size": 1000, "etag": '"e"', "last_modified": None, "version_id": None},
        "checksum": None,
        "spans": [[0, 100, None]],
        "boot": "b:1",
        "pending": [[100, 200, None]],
    }
    with pytest.raises(CheckpointInvalid, match="not an objget-live record"):
        decode_live(frame(old))
    v2 = {  # version 2: one JSON record of segments, rewritten by the engine's loop
        "format": "objget-live",
        "version": 2,
        **{f: getattr(TAG, f) for f in ("run", "boot", "device", "inode", "crc")},
        "segments": [[0, 100, 5]],
    }
    with pytest.raises(CheckpointInvalid, match="version"):
        decode_live(frame(v2))


def tag_body() -> dict:
    raw = encode_live(Live(tag=TAG, segments=()))
    return json.loads(raw.decode().split("\n")[0])


@pytest.mark.parametrize("field", ["run", "boot", "device", "inode", "crc", "slots"])
def test_a_record_without_its_tag_is_invalid(field):
    body = tag_body()
    del body[field]
    with pytest.raises(CheckpointInvalid):
        decode_live(frame(body))


@pytest.mark.parametrize("bad", [b"", b"{}", b"no framing at all", b"\n\n"])
def test_garbage_is_invalid(bad):
    with pytest.raises(CheckpointInvalid):
        decode_live(bad)


def test_empty_and_reversed_entries_are_no_segments():
    body = frame(tag_body())
    raw = body + bytes(-len(body) % _live.PAGE) + bytes(_live.ENTRY) + _live._entry(9, 3, 1)
    assert decode_live(raw).segments == ()


def record(path: str, tag=TAG) -> LiveRecord:
    writer = LiveRecord(path, tag)
    writer.arm()
    return writer


def test_the_writer_writes_nothing_before_arm_and_after_close(tmp_path):
    path = Paths.beside(str(tmp_path / "f")).live
    writer = LiveRecord(path, TAG)
    assert not writer.waiting
    writer.open(lambda: (Span(0, 5, 1),), slots=2)
    writer.publish(0, (0, 9, 1))
    writer.append((0, 9, 1))
    assert not os.path.exists(path)  # no durable checkpoint names the run yet
    writer.arm()
    assert writer.waiting
    long = tuple(Span(i * 10, i * 10 + 5, i) for i in range(50))
    writer.open(lambda: long, slots=2)
    assert not writer.waiting
    assert load_live(path) == Live(tag=TAG, segments=long)
    writer.open(lambda: (), slots=2)  # once: a second open changes nothing
    assert load_live(path) == Live(tag=TAG, segments=long)
    assert os.stat(path).st_mode & 0o777 == 0o600
    writer.close(remove=True)
    writer.open(lambda: long, slots=2)
    writer.publish(0, (0, 9, 1))
    writer.append((0, 9, 1))
    assert not os.path.exists(path)


def test_slots_follow_each_write_and_the_log_keeps_ended_segments(tmp_path):
    path = Paths.beside(str(tmp_path / "f")).live
    writer = record(path)
    writer.open(lambda: (Span(0, 10, 1),), slots=2)
    writer.publish(1, (10, 20, 2))
    assert load_live(path).segments == (Span(0, 10, 1), Span(10, 20, 2))
    writer.publish(1, (10, 30, 3))  # the same segment, further
    assert load_live(path).segments == (Span(0, 10, 1), Span(10, 30, 3))
    writer.append((10, 30, 3))  # ended: in the log, so the slot can move on
    writer.publish(1, (30, 35, 4))
    writer.publish(0, (50, 60, 5))
    writer.publish(7, (70, 80, 6))  # no such slot: nothing
    writer.append((40, 40, 7))  # empty: nothing
    assert load_live(path).segments == (
        Span(0, 10, 1),
        Span(10, 30, 3),
        Span(30, 35, 4),
        Span(50, 60, 5),
    )
    writer.close(remove=False)


def test_without_a_tag_nothing_is_written(tmp_path):
    path = str(tmp_path / "f.objget-ckpt-live")
    writer = record(path, None)
    assert not writer.waiting
    writer.open(lambda: (Span(0, 5, 1),), slots=1)
    writer.publish(0, (0, 5, 1))
    writer.close(remove=False)
    assert not os.path.exists(path)


def test_the_writer_replaces_a_planted_symlink_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    path = Paths.beside(str(tmp_path / "f")).live
    os.symlink(target, path)
    writer = record(path)
    writer.open(lambda: (), slots=1)
    writer.close(remove=False)
    assert target.read_text() == "keep"
    assert not os.path.islink(path)


@pytest.mark.parametrize("step", ["publish", "append"])
def test_a_close_racing_a_write_never_writes_to_a_closed_or_reused_descriptor(
    tmp_path, monkeypatch, step
):
    """The saver thread closes the record (its fdatasync failed) while a worker is in the
    middle of a write; a file opened right after the close takes the freed descriptor
    number. Not one byte of the record may land in that file, and no record may reappear."""
    path = Paths.beside(str(tmp_path / "f")).live
    victim = tmp_path / "victim"
    writer = record(path)
    writer.open(lambda: (), slots=1)
    opened: list[int] = []

    def saver() -> None:
        writer.close(remove=True)
        opened.append(os.open(victim, os.O_RDWR | os.O_CREAT, 0o600))

    closer = threading.Thread(target=saver)
    real = os.pwrite

    def racing(fd, data, offset):
        if not closer.is_alive() and not opened:
            closer.start()
            closer.join(0.5)  # the close runs now, or waits for this write to finish
        return real(fd, data, offset)

    monkeypatch.setattr(_live.os, "pwrite", racing)
    getattr(writer, step)(*((0, (0, 4096, 1)) if step == "publish" else ((0, 4096, 1),)))
    closer.join(10)
    assert not closer.is_alive()
    try:
        assert victim.read_bytes() == b""
        writer.publish(0, (0, 8192, 2))
        writer.append((0, 8192, 2))
        assert not os.path.exists(path)
        assert victim.read_bytes() == b""
    finally:
        for fd in opened:
            os.close(fd)


def test_the_tag_names_the_run_boot_and_data_file(tmp_path):
    part = tmp_path / "f.objget-part"
    part.write_bytes(b"")
    fd = os.open(part, os.O_RDONLY)
    try:
        tag = tag_for(fd, run="abc", crc="crc32")
    finally:
        os.close(fd)
    if boot_id() is None:  # pragma: no cover - not Linux
        assert tag is None
        return
    st = os.stat(part)
    assert tag == LiveTag(run="abc", boot=boot_id(), device=st.st_dev, inode=st.st_ino, crc="crc32")
    with open("/proc/sys/kernel/random/boot_id") as f:
        assert tag.boot == f.read().strip()


def test_run_ids_are_random():
    assert len({new_run() for _ in range(100)}) == 100
    assert len(new_run()) == 32


def test_the_segment_crc_is_the_stores_own_when_it_has_one():
    class Store:
        name = "crc64ecma"
        expected = 0

        def update(self, crc, data):
            return crc + 1

        def combine(self, a, b, n):
            return a ^ b

    store = Store()
    assert segment_crc(store) == ("crc64ecma", store.update)
    name, update = segment_crc(None)
    data = memoryview(b"123456789")
    if name == "crc64xz":
        assert update(0, data) == 0x995DC9BBDF1939FA
        assert update(update(0, data[:4]), data[4:]) == 0x995DC9BBDF1939FA
    else:
        assert (name, update(0, data)) == ("crc32", zlib.crc32(b"123456789"))
