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


@given(lives())
def test_a_live_record_round_trips(live):
    assert decode_live(encode_live(live)) == live


@given(lives(), st.data())
def test_bit_flips_and_truncation_are_detected(live, data):
    raw = bytearray(encode_live(live))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CheckpointInvalid):
        decode_live(bytes(raw))
    with pytest.raises(CheckpointInvalid):
        decode_live(encode_live(live)[: data.draw(st.integers(0, len(raw) - 1))])


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
    body = json.loads(encode_live(Live(tag=TAG, segments=())).decode().split("\n")[0])
    with pytest.raises(CheckpointInvalid, match="version"):
        decode_live(frame({**body, "version": 1}))


@pytest.mark.parametrize(
    "segments",
    [
        [[0, 10, None]],  # every segment has a CRC
        [[0, 10, 1], [5, 20, 2]],  # overlapping
        [[10, 5, 1]],  # reversed
        [[20, 30, 1], [0, 10, 2]],  # unsorted
        [[0, 10, -1]],
        [[0, 10, 2**64]],
    ],
)
def test_bad_segments_make_the_record_invalid(segments):
    body = json.loads(encode_live(Live(tag=TAG, segments=())).decode().split("\n")[0])
    with pytest.raises(CheckpointInvalid):
        decode_live(frame({**body, "segments": segments}))


@pytest.mark.parametrize("field", ["run", "boot", "device", "inode", "crc"])
def test_a_record_without_its_tag_is_invalid(field):
    body = json.loads(encode_live(Live(tag=TAG, segments=())).decode().split("\n")[0])
    del body[field]
    with pytest.raises(CheckpointInvalid):
        decode_live(frame(body))


def test_segments_may_touch():
    live = Live(tag=TAG, segments=(Span(0, 10, 1), Span(10, 20, 2)))
    assert decode_live(encode_live(live)) == live


def test_the_writer_writes_nothing_before_arm_and_after_close(tmp_path):
    path = Paths.beside(str(tmp_path / "f")).live
    writer = LiveRecord(path, TAG)
    writer.write((Span(0, 5, 1),))
    assert not os.path.exists(path)  # no durable checkpoint names the run yet
    writer.arm()
    long = tuple(Span(i * 10, i * 10 + 5, i) for i in range(50))
    writer.write(long)
    assert load_live(path) == Live(tag=TAG, segments=long)
    writer.write((Span(0, 5, 1),))  # shorter: truncated, still exact
    assert load_live(path) == Live(tag=TAG, segments=(Span(0, 5, 1),))
    assert os.stat(path).st_mode & 0o777 == 0o600
    writer.close(remove=True)
    writer.write(long)
    assert not os.path.exists(path)


def test_without_a_tag_nothing_is_written(tmp_path):
    path = str(tmp_path / "f.objget-ckpt-live")
    writer = LiveRecord(path, None)
    writer.arm()
    writer.write((Span(0, 5, 1),))
    writer.close(remove=False)
    assert not os.path.exists(path)


def test_the_writer_replaces_a_planted_symlink_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    path = Paths.beside(str(tmp_path / "f")).live
    os.symlink(target, path)
    writer = LiveRecord(path, TAG)
    writer.arm()
    writer.write(())
    writer.close(remove=False)
    assert target.read_text() == "keep"
    assert not os.path.islink(path)


def test_a_close_racing_a_write_never_writes_to_a_closed_or_reused_descriptor(
    tmp_path, monkeypatch
):
    """The saver thread closes the record (its fdatasync failed) while the loop thread is in
    the middle of a write; a file opened right after the close takes the freed descriptor
    number. Not one byte of the record may land in that file, and no record may reappear."""
    path = Paths.beside(str(tmp_path / "f")).live
    victim = tmp_path / "victim"
    writer = LiveRecord(path, TAG)
    writer.arm()
    writer.write(())
    opened: list[int] = []

    def saver() -> None:
        writer.close(remove=True)
        opened.append(os.open(victim, os.O_RDWR | os.O_CREAT, 0o600))

    closer = threading.Thread(target=saver)
    real = _live.pwrite_all

    def racing(fd, data, offset):
        if not closer.is_alive() and not opened:
            closer.start()
            closer.join(0.5)  # the close runs now, or waits for this write to finish
        real(fd, data, offset)

    monkeypatch.setattr(_live, "pwrite_all", racing)
    writer.write((Span(0, 4096, 1),))
    closer.join(10)
    assert not closer.is_alive()
    try:
        assert victim.read_bytes() == b""
        writer.write((Span(0, 8192, 2),))
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
