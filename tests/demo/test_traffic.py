"""Benign traffic: a reproducible, ordinary mix, and a generator that drives the real upstream."""

from __future__ import annotations

import ipaddress
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import trio

from sentinel_stack.demo.http import NotLoopback, loopback_endpoint
from sentinel_stack.demo.traffic import BenignMix, TrafficStats, generate

SHOP_PATHS = {"/", "/api/items", "/api/orders", "/api/echo", "/healthz"}
DOCUMENTATION = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def test_mix_is_reproducible_and_only_touches_the_shop() -> None:
    first = [BenignMix(random.Random(7), forwarded_for=False).next() for _ in range(1)]
    mix_a = BenignMix(random.Random(7), forwarded_for=True)
    mix_b = BenignMix(random.Random(7), forwarded_for=True)
    requests = [mix_a.next() for _ in range(500)]
    assert requests == [mix_b.next() for _ in range(500)]
    assert first[0].method in ("GET", "POST")
    methods = {r.method for r in requests}
    assert methods == {"GET", "POST"}
    for request in requests:
        path = urlsplit(request.target).path
        assert path in SHOP_PATHS or path.startswith("/api/items/"), request.target
        assert ".." not in request.target and "_vuln" not in request.target
        headers = dict(request.headers)
        assert headers["user-agent"] and headers["accept"]
        if request.body:
            assert headers["content-type"] == "application/json"
        address = ipaddress.ip_address(headers["x-forwarded-for"])
        assert any(address in net for net in DOCUMENTATION)
    assert len({dict(r.headers)["x-forwarded-for"] for r in requests}) > 5


def test_no_forwarded_for_unless_asked() -> None:
    mix = BenignMix(random.Random(1), forwarded_for=False)
    assert all("x-forwarded-for" not in dict(mix.next().headers) for _ in range(100))


def test_generators_refuse_anything_but_loopback() -> None:
    assert loopback_endpoint("http://127.0.0.1:8080/x?y=1") == ("127.0.0.1", 8080, "/x?y=1")
    assert loopback_endpoint("http://[::1]:81") == ("::1", 81, "/")
    for url in ("http://192.0.2.1/", "https://127.0.0.1/", "http://example.com/"):
        with pytest.raises(NotLoopback):
            loopback_endpoint(url)


@pytest.fixture
def demo_upstream() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel_stack.demo.upstream", "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the upstream says when it listens
        if b"serving on" in line:
            break
    yield port
    process.terminate()
    process.wait(10)


async def test_generate_drives_the_upstream_at_the_asked_rate(demo_upstream: int) -> None:
    stats = TrafficStats()
    start = trio.current_time()
    await generate(
        f"http://127.0.0.1:{demo_upstream}",
        rate=100,
        duration=1.0,
        forwarded_for=True,
        stats=stats,
        seed=3,
    )
    elapsed = trio.current_time() - start
    assert 90 <= stats.sent <= 101
    assert elapsed < 3
    assert not stats.errors
    assert set(stats.by_status) <= {200, 201, 404}
    assert stats.by_status[200] > stats.by_status[404]
