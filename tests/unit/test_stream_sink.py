"""The ordered sink: writers in any order, one pipe in offset order, a bounded window."""

import os
import random
import threading
import time

import pytest

from objget.engine._stream_checks import CompositeStreamCheck, HashCheck
from objget.engine._stream_sink import OrderedSink

KiB = 1024


class Reader:
    """Reads a pipe to its end in a thread (optionally slowly)."""

    def __init__(self, *, pause: float = 0.0, chunk: int = 65536):
        self.r, self.w = os.pipe()
        self.data = bytearray()
        self._pause, self._chunk = pause, chunk
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while True:
            got = os.read(self.r, self._chunk)
            if not got:
                break
            self.data += got
            if self._pause:
                time.sleep(self._pause)
        os.close(self.r)

    def finish(self) -> bytes:
        os.close(self.w)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        return bytes(self.data)


def never() -> bool:
    return False


def write_in_parallel(sink, data, pieces, workers):
    """`workers` threads each take pieces from a shared list in offset order (as claims are
    handed out) and write them in chunks, as engine workers do."""
    lock = threading.Lock()
    todo = list(pieces)
    errors = []

    def work():
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    start, stop = todo.pop(0)
                pos = start
                while pos < stop:
                    n = min(stop - pos, random.randint(1, 8 * KiB))
                    assert sink.write(memoryview(data)[pos : pos + n], pos, never)
                    pos += n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "writers deadlocked"
    assert not errors, errors


@pytest.mark.parametrize("seed", range(6))
def test_parallel_writers_come_out_in_order_within_the_window(seed):
    random.seed(seed)
    rnd = random.Random(seed)
    size = rnd.randint(1, 600 * KiB)
    data = rnd.randbytes(size)
    window = rnd.choice([16 * KiB, 64 * KiB, 1024 * KiB])
    cuts = sorted({0, size, *(rnd.randrange(size) for _ in range(rnd.randint(0, 40)))})
    pieces = list(zip(cuts, cuts[1:], strict=False))
    reader = Reader(pause=0.0005 if seed % 2 else 0.0, chunk=rnd.choice([512, 65536]))
    check = HashCheck("sha256", "")
    sink = OrderedSink(reader.w, size=size, window=window, checks=[check])
    write_in_parallel(sink, data, pieces, workers=rnd.randint(1, 8))
    assert sink.sent == size
    sink.close()
    assert reader.finish() == data
    assert sink.peak <= min(window, size)
    import hashlib

    assert check.result() == hashlib.sha256(data).hexdigest()


def test_one_writer_in_order_never_buffers():
    data = random.Random(1).randbytes(300 * KiB)
    reader = Reader()
    sink = OrderedSink(reader.w, size=len(data), window=64 * KiB)
    for pos in range(0, len(data), 10 * KiB):
        assert sink.write(memoryview(data)[pos : pos + 10 * KiB], pos, never)
    sink.close()
    assert reader.finish() == data
    assert sink.peak == 0


def test_a_writer_beyond_the_window_waits_for_the_head():
    reader = Reader()
    sink = OrderedSink(reader.w, size=None, window=8)
    assert sink.write(memoryview(b"cdef"), 2, never)  # inside [0, 8): buffered
    done = threading.Event()

    def far():
        assert sink.write(memoryview(b"ijkl"), 8, never)  # needs the head at >= 4
        done.set()

    t = threading.Thread(target=far)
    t.start()
    assert not done.wait(0.3), "a write beyond the window did not wait"
    assert sink.write(memoryview(b"ab"), 0, never)  # the head: sends ab + cdef
    assert done.wait(5)
    t.join(5)
    assert sink.write(memoryview(b"gh"), 6, never)
    assert sink.sent == 12
    sink.close()
    assert reader.finish() == b"abcdefghijkl"


def test_a_waiting_writer_gives_up_when_cancelled():
    reader = Reader()
    sink = OrderedSink(reader.w, size=None, window=4)
    flag = threading.Event()
    got = []
    t = threading.Thread(target=lambda: got.append(sink.write(memoryview(b"xx"), 100, flag.is_set)))
    t.start()
    time.sleep(0.1)
    flag.set()
    t.join(2)
    assert got == [False]
    sink.close()
    assert reader.finish() == b""


def test_bytes_below_the_head_are_dropped():
    """A single stream without ranges restarts at byte 0: what was sent is not sent again."""
    reader = Reader()
    sink = OrderedSink(reader.w, size=None)
    assert sink.write(memoryview(b"hello"), 0, never)
    assert sink.write(memoryview(b"hel"), 0, never)
    assert sink.write(memoryview(b"lo world"), 3, never)
    sink.close()
    assert reader.finish() == b"hello world"


def test_a_closed_reader_fails_the_writer_and_stops_the_rest():
    r, w = os.pipe()
    os.close(r)
    sink = OrderedSink(w, size=100, window=100)
    assert sink.write(memoryview(b"x" * 10), 50, never)  # buffered, not sent
    with pytest.raises(BrokenPipeError):
        sink.write(memoryview(b"y" * 10), 0, never)
    assert sink.write(memoryview(b"z" * 10), 10, never) is False  # broken: nothing more
    sink.close()
    os.close(w)


def test_composite_check_in_order_matches_the_file_check(tmp_path):
    from objget.integrity.digests import CompositeCheck
    from objget.integrity.s3crc import crc_function

    if crc_function("crc32c") is None:
        pytest.fail("no crc32c implementation installed (objget[s3])")
    data = random.Random(3).randbytes(100_000)
    sizes = (40_000, 40_000, 20_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        expected = CompositeCheck("crc32c", "", sizes).compute(fd, len(data))
    finally:
        os.close(fd)
    check = CompositeStreamCheck("crc32c-composite", expected, "crc32c", sizes)
    for pos in range(0, len(data), 7_777):
        check.update(memoryview(data)[pos : pos + 7_777])
    assert check.result() == expected
    short = CompositeStreamCheck("crc32c-composite", expected, "crc32c", sizes)
    short.update(memoryview(data)[:-1])
    assert short.result() != expected


def test_a_non_blocking_descriptor_is_waited_on_not_failed():
    """A stdout left non-blocking by the parent answers EAGAIN when the pipe is full."""
    reader = Reader(pause=0.01, chunk=65536)
    os.set_blocking(reader.w, False)
    data = random.Random(5).randbytes(1024 * KiB)
    sink = OrderedSink(reader.w, size=len(data))
    assert sink.write(memoryview(data), 0, never)
    sink.close()
    assert reader.finish() == data
