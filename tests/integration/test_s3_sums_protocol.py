"""S3 SHA-256/SHA-1 headers from a scripted fake S3 over real TCP (pytest-httpserver): the
value the store announces is what the file must match, whatever the bytes were."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

import objget

from .test_s3_protocol import MiB, aws_env, fake, fetch

__all__ = ["aws_env", "fake"]  # the fixtures: env credentials only, the fake store


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


@pytest.mark.parametrize("name", ["sha256", "sha1"])
def test_a_wrong_announced_digest_is_an_integrity_error(fake, tmp_path, name):
    data = random.Random(31).randbytes(2 * MiB + 1)
    headers = {f"x-amz-checksum-{name}": b64(name, data), "x-amz-checksum-type": "FULL_OBJECT"}
    app, endpoint = fake(data, headers=headers)
    res = fetch(endpoint, tmp_path / "out")
    assert res.verified == ("size", name) and dict(res.checksums) == {name: b64(name, data)}
    app.extra[f"x-amz-checksum-{name}"] = b64(name, data + b"!")
    dest = tmp_path / "dest"
    dest.write_bytes(b"before")
    with pytest.raises(objget.IntegrityError) as info:
        fetch(endpoint, dest)
    assert info.value.algorithm == name
    assert (info.value.expected, info.value.actual) == (b64(name, data + b"!"), b64(name, data))
    assert dest.read_bytes() == b"before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "out"]


def test_a_composite_digest_without_part_sizes_is_not_claimed(fake, tmp_path):
    data = b"q" * 5000
    composite = b64("sha256", hashlib.sha256(data).digest()) + "-1"
    app, endpoint = fake(
        data, headers={"x-amz-checksum-sha256": composite, "x-amz-checksum-type": "COMPOSITE"}
    )
    res = fetch(endpoint, tmp_path / "out")  # GetObjectAttributes is not answered: skipped
    assert res.verified == ("size",) and dict(res.checksums) == {}
