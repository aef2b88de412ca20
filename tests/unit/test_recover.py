"""Confirming a live record's extra bytes in the data file (`objget._recover`)."""

import os
import zlib

import pytest

from objget._checkpoint import Checkpoint, LiveRecord, Paths, boot_key, save
from objget._plan import Span
from objget._recover import PAGE, confirm_live, resume_spans
from objget.integrity._gf2 import CrcCombiner

CRC32 = CrcCombiner(0xEDB88320, 32)


def crc_update(crc: int, data: memoryview) -> int:
    return zlib.crc32(data, crc)


def data_file(tmp_path, size: int, written: list[tuple[int, int]]):
    """A preallocated-like file of `size` zeros with pseudo-random bytes at `written`."""
    path = tmp_path / "f.objget-part"
    body = bytearray(size)
    for a, b in written:
        body[a:b] = bytes((i * 7 + 3) % 251 + 1 for i in range(a, b))  # never zero
    path.write_bytes(bytes(body))
    return path, bytes(body)


@pytest.fixture
def fd_of():
    fds = []

    def open_(path):
        fds.append(os.open(path, os.O_RDONLY))
        return fds[-1]

    yield open_
    for fd in fds:
        os.close(fd)


def test_bytes_that_read_back_are_kept_with_their_crc(tmp_path, fd_of):
    path, body = data_file(tmp_path, 10 * PAGE, [(0, 10 * PAGE)])
    got = confirm_live(
        fd_of(path),
        [Span(0, 100, zlib.crc32(body[:100]))],
        [Span(0, 10 * PAGE, None)],
        update=crc_update,
        combine=CRC32.combine,
    )
    assert got == (Span(0, 10 * PAGE, zlib.crc32(body)),)


def test_a_claim_is_cut_at_its_first_zero_page(tmp_path, fd_of):
    # written: [0, 3 pages + 100); the live record claims 8 pages (power cut before the rest)
    path, body = data_file(tmp_path, 8 * PAGE, [(0, 3 * PAGE + 100), (5 * PAGE, 6 * PAGE)])
    got = confirm_live(
        fd_of(path), [], [Span(0, 8 * PAGE, 1)], update=crc_update, combine=CRC32.combine
    )
    # page 3 holds 100 written bytes: not all zeros, kept; page 4 is zeros: the cut
    assert got == (Span(0, 4 * PAGE, zlib.crc32(body[: 4 * PAGE])),)


def test_unaligned_pieces_and_a_zero_head(tmp_path, fd_of):
    path, body = data_file(tmp_path, 6 * PAGE, [(0, 2 * PAGE), (3 * PAGE, 6 * PAGE)])
    durable = [Span(0, 2 * PAGE - 10, None)]
    live = [Span(0, 6 * PAGE, None)]
    got = confirm_live(fd_of(path), durable, live, update=None, combine=None)
    # [2P-10, 2P) is data (joins the durable span), page 2 is zeros: cut there
    assert got == (Span(0, 2 * PAGE, None),)
    live2 = [Span(0, 2 * PAGE - 10, None), Span(3 * PAGE + 5, 6 * PAGE, None)]
    got2 = confirm_live(fd_of(path), durable, live2, update=None, combine=None)
    assert got2 == (Span(0, 2 * PAGE - 10, None), Span(3 * PAGE + 5, 6 * PAGE, None))


def test_nothing_written_means_the_durable_spans(tmp_path, fd_of):
    path, _ = data_file(tmp_path, 4 * PAGE, [(0, PAGE)])
    durable = [Span(0, PAGE, 5)]
    got = confirm_live(
        fd_of(path), durable, [Span(0, 4 * PAGE, 9)], update=crc_update, combine=CRC32.combine
    )
    assert got == (Span(0, PAGE, 5),)


def test_resume_spans_uses_a_confirmed_live_record_and_ignores_a_lost_one(tmp_path):
    dest = str(tmp_path / "f")
    paths = Paths.beside(dest)
    _, body = data_file(tmp_path, 8 * PAGE, [(0, 5 * PAGE)])
    ident = {"size": 8 * PAGE, "etag": '"e"', "last_modified": None, "version_id": None}
    base = {"source": "http://h/o", "identity": ident, "checksum": None}
    durable = Checkpoint(spans=(Span(0, PAGE, None),), **base)
    save(paths.checkpoint, durable)
    boot = boot_key(paths.part)
    if boot is None:
        pytest.skip("no boot id on this system: live records are never believed")
    live = LiveRecord(paths.live)
    live.write(
        Checkpoint(spans=(Span(0, 2 * PAGE, None),), pending=(Span(2 * PAGE, 7 * PAGE, None),),
                   boot=boot, **base)  # fmt: skip
    )
    live.close(remove=False)
    assert resume_spans(paths, durable, None) == (Span(0, 5 * PAGE, None),)
    os.truncate(paths.part, 0)
    os.truncate(paths.part, 8 * PAGE)  # the "disk" lost everything after the durable record
    assert resume_spans(paths, durable, None) == (Span(0, PAGE, None),)
