"""Network faults inside a private network namespace (only `lo`): iptables resets after N
bytes, stalls (DROP) caught by the stall detector, 5% random loss, a tbf bandwidth cap,
refused connections, a DNS failure and a slow trickle. nginx and objget both run inside.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from .._servers.nginx import Nginx
from ._harness import (
    MiB,
    ckpt_done,
    ckpt_lies,
    dest_wrong_bytes,
    kill,
    run,
    same,
    start,
    typed_error,
    wait_for,
)
from ._netns import NetNS, netns


@pytest.fixture(scope="module")
def inside(site_root, tmp_path_factory) -> Iterator[tuple[NetNS, Nginx, Nginx]]:
    """The module's tests run inside one namespace with two nginx: plain and trickling."""
    with netns() as ns:
        plain = Nginx(site_root, tmp_path_factory.mktemp("ns-nginx")).start()
        trickle = Nginx(
            site_root,
            tmp_path_factory.mktemp("ns-trickle"),
            extra="limit_rate_after 32k; limit_rate 24k;",
        )
        try:
            trickle.start()
            yield ns, plain, trickle
        finally:
            trickle.stop()
            plain.stop()


@pytest.fixture
def ns(inside) -> Iterator[tuple[NetNS, Nginx, Nginx]]:
    inside[0].flush()
    yield inside
    inside[0].flush()


def connbytes(port: int, n: int, direction: str, target: list[str]) -> list[object]:
    side = "--dport" if direction == "to-server" else "--sport"
    return [
        "-A",
        "INPUT",
        "-p",
        "tcp",
        side,
        port,
        "-m",
        "connbytes",
        "--connbytes",
        f"{n}:",
        "--connbytes-dir",
        "reply",
        "--connbytes-mode",
        "bytes",
        "-j",
        *target,
    ]


def download(url: str, dest: Path, *extra: object):  # type: ignore[no-untyped-def]
    done = run([url, dest, "-q", "--json", *extra], timeout=240)
    result = json.loads(done.out) if done.rc == 0 else None
    return done, result


def test_reset_after_n_bytes_resumes(ns, make_object, tmp_path, summary, trials):
    net, web, _ = ns
    source = make_object("net-reset.bin", 6 * MiB)
    rng = random.Random(5)
    for i in range(trials(3, 10)):
        net.flush()
        n = rng.choice((256 * 1024, 700 * 1024, MiB, 2 * MiB))
        net.iptables(*connbytes(web.port, n, "to-server", ["REJECT", "--reject-with", "tcp-reset"]))
        dest = tmp_path / f"reset-{i}.bin"
        done, result = download(f"{web.url}/net-reset.bin", dest, "-j", rng.choice((1, 2, 4)))
        ok = done.rc == 0 and same(dest, source) and result["retries"] >= 1
        summary.trial(
            "net: TCP reset after N bytes", correct=ok, wrong_bytes=dest_wrong_bytes(dest, source)
        )
        assert ok, (n, done.rc, done.err, result)


def test_stall_is_detected_and_the_part_resumes(ns, make_object, tmp_path, summary, trials):
    net, web, _ = ns
    size = 3 * MiB
    source = make_object("net-stall.bin", size)
    for i in range(trials(1, 3)):
        net.flush()
        net.iptables(*connbytes(web.port, MiB, "from-server", ["DROP"]))
        dest = tmp_path / f"stall-{i}.bin"
        done, result = download(
            f"{web.url}/net-stall.bin",
            dest,
            "-j",
            "1",
            "--part-size",
            "4M",
            "--stall-timeout",
            "2",
        )
        # every connection stalls after ~1 MiB: only resuming from the last byte can finish
        ok = done.rc == 0 and same(dest, source) and result["retries"] >= 2
        ok = ok and result["bytes_fetched"] == size
        summary.trial(
            "net: stall mid-body (DROP) -> stall detector, resume",
            correct=ok,
            wrong_bytes=dest_wrong_bytes(dest, source),
        )
        assert ok, (done.rc, done.err, result)


def test_five_percent_loss(ns, make_object, tmp_path, summary, trials):
    net, web, _ = ns
    source = make_object("net-loss.bin", 8 * MiB)
    net.iptables(
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        "0.05",
        "-j",
        "DROP",
    )
    for i in range(trials(2, 6)):
        dest = tmp_path / f"loss-{i}.bin"
        done, _ = download(f"{web.url}/net-loss.bin", dest, "-j", "4", "--stall-timeout", "5")
        ok = done.rc == 0 and same(dest, source)
        summary.trial(
            "net: 5% random packet loss", correct=ok, wrong_bytes=dest_wrong_bytes(dest, source)
        )
        assert ok, done.err


def test_bandwidth_cap(ns, make_object, tmp_path, summary):
    net, web, _ = ns
    source = make_object("net-tbf.bin", 4 * MiB)
    net.tc(
        "qdisc",
        "add",
        "dev",
        "lo",
        "root",
        "tbf",
        "rate",
        "16mbit",
        "burst",
        "256kb",
        "latency",
        "400ms",
    )
    dest = tmp_path / "tbf.bin"
    done, _ = download(f"{web.url}/net-tbf.bin", dest, "-j", "8", "--part-size", "256K")
    ok = done.rc == 0 and same(dest, source)
    summary.trial(
        "net: bandwidth cap (tc tbf 16 Mbit/s)",
        correct=ok,
        wrong_bytes=dest_wrong_bytes(dest, source),
    )
    assert ok, done.err


@pytest.mark.interrupt
def test_refused_from_the_start_and_mid_download(ns, make_object, tmp_path, summary):
    net, web, _ = ns
    size = 24 * MiB
    source = make_object("net-refused.bin", size)
    url = f"{web.url}/net-refused.bin"
    refuse = [
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        web.port,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]
    net.iptables(*refuse)
    dest = tmp_path / "refused.bin"
    done = run([url, dest, "-q", "--retries", "2"])
    ok = typed_error(done, 5, "cannot connect") and not dest.exists()
    summary.trial("net: connection refused", typed=ok, wrong_bytes=dest_wrong_bytes(dest, source))
    assert ok, done.err
    # mid-download: everything to the server is refused from 25 % on, then allowed again
    net.flush()
    proc = start([url, dest, "-q", "--retries", "3", "--limit-rate", "8M"], tmp_path / "r.log")
    try:
        assert wait_for(lambda: ckpt_done(dest) >= size // 4, 60, proc=proc)
        net.iptables(*refuse)
        status = proc.wait(timeout=120)
    finally:
        kill(proc)
    log = (tmp_path / "r.log").read_text()
    lies = ckpt_lies(dest, source)
    typed = status == 5 and "progress is saved" in log and not dest.exists()
    net.flush()
    again, result = download(url, dest)
    ok = again.rc == 0 and same(dest, source) and result["bytes_resumed"] >= size // 4
    summary.trial(
        "net: connection refused mid-download, then resumed",
        correct=ok and typed,
        ckpt_lies=lies,
        wrong_bytes=dest_wrong_bytes(dest, source),
    )
    assert typed and lies == 0, (status, log)
    assert ok, (again.err, result)


def test_dns_failure(ns, tmp_path, summary):
    dest = tmp_path / "dns.bin"
    done = run(["http://objget-faults.invalid/x.bin", dest, "-q", "--retries", "2"])
    ok = typed_error(done, 5, "cannot resolve host objget-faults.invalid") and not dest.exists()
    summary.trial("net: DNS failure", typed=ok)
    assert ok, done.err


def test_slow_trickle_completes_without_false_stalls(ns, make_object, tmp_path, summary):
    _, _, trickle = ns
    source = make_object("net-trickle.bin", 192 * 1024)
    dest = tmp_path / "trickle.bin"
    done, result = download(
        f"{trickle.url}/net-trickle.bin",
        dest,
        "-j",
        "3",
        "--part-size",
        "64K",
        "--stall-timeout",
        "2",
    )
    ok = done.rc == 0 and same(dest, source)
    summary.trial(
        "net: slow trickle (24 KiB/s per connection)",
        correct=ok,
        wrong_bytes=dest_wrong_bytes(dest, source),
    )
    assert ok, done.err
    assert result["retries"] == 0, "a slow but live connection was dropped as stalled"
