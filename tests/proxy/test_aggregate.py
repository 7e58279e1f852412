"""Merging the workers' metrics and status (pure)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from sentinel_stack.proxy.aggregate import (
    families_of,
    merge_families,
    merge_status,
    render,
    retire,
    total,
)
from sentinel_stack.proxy.workerwire import LineBuffer, Ready, Scrape, Snapshot, WireError


def worker_registry(requests: int, breaker: int, available: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("sentinel_proxy_requests", "r", ["route", "status"], registry=registry)
    counter.labels("all", "200").inc(requests)
    histogram = Histogram("sentinel_proxy_request_duration_seconds", "d", registry=registry)
    for _ in range(requests):
        histogram.observe(0.002)
    Gauge("sentinel_proxy_agent_breaker_state", "b", registry=registry).set(breaker)
    Gauge("sentinel_proxy_upstream_targets_available", "a", registry=registry).set(available)
    Gauge("sentinel_proxy_access_records_dropped", "x", registry=registry).set(requests)
    return registry


def values(text: bytes) -> dict[str, float]:
    return {
        s.name + str(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_and_histograms_add_up_and_gauges_follow_their_rule() -> None:
    one = families_of(worker_registry(3, breaker=0, available=2))
    two = families_of(worker_registry(4, breaker=2, available=1))
    merged = values(render(merge_families([one, two])))
    assert merged["sentinel_proxy_requests_total[('route', 'all'), ('status', '200')]"] == 7
    assert merged["sentinel_proxy_request_duration_seconds_count[]"] == 7
    assert merged["sentinel_proxy_request_duration_seconds_bucket[('le', '0.005')]"] == 7
    assert merged["sentinel_proxy_agent_breaker_state[]"] == 2  # the most open copy
    assert merged["sentinel_proxy_upstream_targets_available[]"] == 1  # the worst-off worker
    assert merged["sentinel_proxy_access_records_dropped[]"] == 7  # others add up
    created = [v for k, v in values(render(one)).items() if "_created" in k]
    assert all(v > 0 for v in created)


def test_an_exited_workers_counters_stay_but_not_its_gauges() -> None:
    gone = families_of(worker_registry(5, breaker=2, available=0))
    retired = retire(retire([], gone), gone)  # two incarnations that counted 5 each
    live = families_of(worker_registry(1, breaker=0, available=2))
    merged = merge_families([live, retired])
    assert total(merged, "sentinel_proxy_requests_total") == 11
    assert total(merged, "sentinel_proxy_agent_breaker_state") == 0
    assert total(merged, "sentinel_proxy_upstream_targets_available") == 2


def test_status_merge_is_the_shape_of_one_proxy() -> None:
    def status(available: bool, breaker: str, connected: bool, sent: int) -> dict[str, object]:
        target = {"target": "a:1", "scheme": "http", "available": available}
        target |= {"health": "healthy", "breaker": breaker, "in_flight": 1}
        link = {"connected": connected, "breaker": "closed", "connects": 1, "last_error": ""}
        return {
            "upstreams": {"app": {"balance": "p2c", "targets": [target]}},
            "agents": {"waf": {**link, "timeout_ms": 250.0, "failure_mode": "open"}},
            "access_log": {"sent": sent, "dropped": 1},
        }

    merged = merge_status([status(True, "closed", True, 3), status(False, "open", False, 4)])
    assert merged["upstreams"]["app"]["targets"] == [
        {
            "target": "a:1",
            "scheme": "http",
            "available": False,
            "health": "healthy",
            "breaker": "open",
            "in_flight": 2,
        }
    ]
    assert merged["agents"]["waf"]["connected"] is False
    assert merged["agents"]["waf"]["connects"] == 2
    assert merged["access_log"] == {"sent": 7, "dropped": 2}


def test_the_wire_splits_lines_anywhere_and_refuses_huge_ones() -> None:
    import msgspec

    encoder = msgspec.json.Encoder()
    data = b"".join(
        encoder.encode(m) + b"\n"
        for m in (Ready(1, 42, ["http://x"]), Snapshot(3, [], {"revision": "r"}), Scrape(4))
    )
    for split in range(len(data)):
        buffer = LineBuffer()
        lines = buffer.feed(data[:split]) + buffer.feed(data[split:])
        assert len(lines) == 3
    with pytest.raises(WireError):
        LineBuffer(max_line=10).feed(b"x" * 11)
