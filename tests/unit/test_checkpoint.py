import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget import LockedError
from objget.engine._checkpoint import CheckpointInvalid, DestLock, Paths, load, save
from objget.engine._checkpoint_record import Checkpoint, decode, encode
from objget.engine._plan import Span

IDENTITY = {"size": 1000, "etag": '"abc"', "last_modified": None, "version_id": None}


@st.composite
def checkpoints(draw):
    cuts = sorted(set(draw(st.lists(st.integers(0, 1000), max_size=16))))
    spans = []
    prev = -1
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if a < b and a > prev:
            crc = draw(st.one_of(st.none(), st.integers(0, 2**64 - 1)))
            spans.append(Span(a, b, crc))
            prev = b
    return Checkpoint(
        source=draw(st.text(max_size=40)),
        identity=IDENTITY,
        checksum=draw(st.sampled_from([None, "crc64ecma"])),
        spans=tuple(spans),
        run=draw(st.one_of(st.none(), st.text(min_size=1, max_size=32))),
    )


@given(checkpoints())
def test_roundtrip(ckpt):
    assert decode(encode(ckpt)) == ckpt


@given(st.binary(max_size=600))
def test_fuzzed_bytes_never_crash(data):
    try:
        decode(data)
    except CheckpointInvalid:
        pass


@given(checkpoints(), st.data())
def test_bit_flips_and_truncation_are_detected(ckpt, data):
    raw = bytearray(encode(ckpt))
    i = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[i] ^= 1 << bit
    with pytest.raises(CheckpointInvalid):
        decode(bytes(raw))
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(CheckpointInvalid):
        decode(encode(ckpt)[:cut])


def test_foreign_and_wrong_version():
    import json
    import zlib

    def frame(body):
        text = json.dumps(body)
        return f"{text}\n{zlib.crc32(text.encode()):08x}\n".encode()

    with pytest.raises(CheckpointInvalid, match="not an objget"):
        decode(frame({"hello": 1}))
    with pytest.raises(CheckpointInvalid, match="version"):
        decode(frame({"format": "objget-checkpoint", "version": 99}))
    with pytest.raises(CheckpointInvalid):
        decode(
            frame(
                {
                    "format": "objget-checkpoint",
                    "version": 1,
                    "source": "x",
                    "object": IDENTITY,
                    "checksum": None,
                    "spans": [[0, 2000, None]],
                }
            )
        )


def test_the_run_id_is_kept_and_an_older_checkpoint_has_none():
    with_run = Checkpoint(source="s", identity=IDENTITY, checksum=None, spans=(), run="r1")
    assert decode(encode(with_run)).run == "r1"
    text = encode(Checkpoint(source="s", identity=IDENTITY, checksum=None, spans=()))
    assert b'"run"' not in text and decode(text).run is None


def test_save_load_mode_and_symlink(tmp_path):
    path = str(tmp_path / "f.objget-ckpt")
    ckpt = Checkpoint(source="s", identity=IDENTITY, checksum=None, spans=(Span(0, 10),))
    save(path, ckpt)
    assert load(path) == ckpt
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f.objget-ckpt"]
    target = tmp_path / "elsewhere"
    target.write_bytes(encode(ckpt))
    link = tmp_path / "link.objget-ckpt"
    link.symlink_to(target)
    with pytest.raises(CheckpointInvalid, match="symlink"):
        load(str(link))
    assert load(str(tmp_path / "none")) is None


def test_lock_is_exclusive(tmp_path):
    paths = Paths.beside(str(tmp_path / "dest"))
    with DestLock(paths.lock, dest=paths.dest):
        with pytest.raises(LockedError, match="another objget run"):
            DestLock(paths.lock, dest=paths.dest).acquire()
    assert not os.path.exists(paths.lock)
    with DestLock(paths.lock, dest=paths.dest):
        pass
