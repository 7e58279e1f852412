"""Rate limiter under a synthetic clock: exact admitted counts, keys, eviction, dry-run."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sentinel_agents.ratelimit import (
    RateLimiter,
    RateLimitRequest,
    parse_rate_limit_config,
    render_rate_limit_headers,
)


def limiter(**table: object) -> RateLimiter:
    return RateLimiter(parse_rate_limit_config(table))


def req(
    ip: str = "10.0.0.1", path: str = "/", method: str = "GET", route: str = "", **headers: str
) -> RateLimitRequest:
    return RateLimitRequest(method=method, path=path, client_ip=ip, route=route, headers=headers)


def admitted(rl: RateLimiter, request: RateLimitRequest, now: float, tries: int) -> int:
    return sum(rl.decide(request, now).allowed for _ in range(tries))


def test_rate_10_per_s_burst_5_admits_exactly_5_then_one_per_100ms() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 10, "burst": 5}])
    assert admitted(rl, req(), 0.0, 50) == 5
    for step in range(1, 21):
        now = step * 0.1
        assert admitted(rl, req(), now, 10) == 1, f"at t={now}"
        # Between two emission intervals nothing more is admitted.
        assert admitted(rl, req(), now + 0.05, 10) == 0


def test_idle_key_refills_to_full_burst_but_not_beyond() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 10, "burst": 5}])
    assert admitted(rl, req(), 0.0, 10) == 5
    assert admitted(rl, req(), 100.0, 10) == 5


def test_rate_over_longer_period() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 60, "period": "1m", "burst": 1}])
    assert admitted(rl, req(), 0.0, 5) == 1
    assert admitted(rl, req(), 0.999, 5) == 0
    assert admitted(rl, req(), 1.0, 5) == 1


def test_result_fields_and_headers() -> None:
    rl = limiter(rules=[{"name": "api", "rate": 10, "burst": 5}])
    first = rl.decide(req(), 0.0)
    assert (first.allowed, first.rule, first.limit, first.remaining) == (True, "api", 5, 4)
    assert first.retry_after == 0.0
    assert first.reset == 0.1
    for _ in range(4):
        rl.decide(req(), 0.0)
    refused = rl.decide(req(), 0.0)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == 0.1
    assert refused.reset == 0.5
    headers = dict(render_rate_limit_headers(refused))
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit-Limit"] == headers["X-RateLimit-Limit"] == "5"
    assert headers["RateLimit-Remaining"] == headers["X-RateLimit-Remaining"] == "0"
    assert headers["RateLimit-Reset"] == headers["X-RateLimit-Reset"] == "1"
    assert headers["RateLimit-Policy"] == "5;w=1"
    assert "Retry-After" not in dict(render_rate_limit_headers(first))
    assert "X-RateLimit-Limit" not in dict(render_rate_limit_headers(first, legacy=False))


def test_retry_after_is_when_the_next_request_is_admitted() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 1, "period": "10s", "burst": 2}])
    rl.decide(req(), 0.0)
    rl.decide(req(), 0.0)
    refused = rl.decide(req(), 3.0)
    assert refused.retry_after == 7.0
    assert not rl.decide(req(), 3.0 + refused.retry_after - 0.001).allowed
    assert rl.decide(req(), 3.0 + refused.retry_after).allowed


def test_no_matching_rule_means_no_limit_and_no_headers() -> None:
    rl = limiter(
        rules=[{"name": "login", "rate": 1, "burst": 1, "match": {"path_prefix": "/login"}}]
    )
    result = rl.decide(req(path="/home"), 0.0)
    assert result.allowed and result.rule is None
    assert render_rate_limit_headers(result) == []
    assert admitted(rl, req(path="/home"), 0.0, 100) == 100


def test_first_matching_rule_wins() -> None:
    rl = limiter(
        rules=[
            {
                "name": "login",
                "rate": 1,
                "burst": 2,
                "match": {"path_prefix": "/login", "method": "post"},
            },
            {"name": "api", "rate": 1, "burst": 3, "match": {"route": ["api", "v2"]}},
            {"name": "keyed", "rate": 1, "burst": 4, "match": {"header": {"name": "X-Api-Key"}}},
            {
                "name": "pinned",
                "rate": 1,
                "burst": 5,
                "match": {"header": {"name": "x-env", "value": "test"}},
            },
            {"name": "default", "rate": 1, "burst": 6},
        ]
    )
    assert rl.decide(req(path="/login/x", method="POST", route="api"), 0).rule == "login"
    assert rl.decide(req(path="/login/x", method="GET", route="api"), 0).rule == "api"
    assert rl.decide(req(route="v2"), 0).rule == "api"
    assert rl.decide(req(**{"x-api-key": "k"}), 0).rule == "keyed"
    assert rl.decide(req(**{"x-env": "test"}), 0).rule == "pinned"
    assert rl.decide(req(**{"x-env": "prod"}), 0).rule == "default"
    assert admitted(rl, req(path="/login", method="POST", ip="9.9.9.9"), 0, 10) == 2


def test_keys_separate_clients_and_global_shares_one_bucket() -> None:
    per_ip = limiter(rules=[{"name": "r", "rate": 1, "burst": 2}])
    assert admitted(per_ip, req(ip="1.1.1.1"), 0, 5) == 2
    assert admitted(per_ip, req(ip="2.2.2.2"), 0, 5) == 2
    shared = limiter(rules=[{"name": "r", "rate": 1, "burst": 2, "key": "global"}])
    assert admitted(shared, req(ip="1.1.1.1"), 0, 5) == 2
    assert admitted(shared, req(ip="2.2.2.2"), 0, 5) == 0


def test_composite_key_ip_and_header() -> None:
    rl = limiter(
        rules=[{"name": "r", "rate": 1, "burst": 2, "key": ["client_ip", "header:X-Api-Key"]}]
    )
    assert admitted(rl, req(ip="1.1.1.1", **{"x-api-key": "a"}), 0, 5) == 2
    assert admitted(rl, req(ip="1.1.1.1", **{"x-api-key": "b"}), 0, 5) == 2
    assert admitted(rl, req(ip="2.2.2.2", **{"x-api-key": "a"}), 0, 5) == 2
    # Omitting the header does not escape the limit: header-less requests share a bucket.
    assert admitted(rl, req(ip="1.1.1.1"), 0, 5) == 2
    assert admitted(rl, req(ip="1.1.1.1"), 0, 5) == 0


def test_composite_key_path_method_route() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 1, "burst": 1, "key": ["path", "method", "route"]}])
    assert admitted(rl, req(path="/a", method="GET", route="x"), 0, 3) == 1
    assert admitted(rl, req(path="/a", method="get", route="x", ip="9.9.9.9"), 0, 3) == 0
    assert admitted(rl, req(path="/a", method="POST", route="x"), 0, 3) == 1
    assert admitted(rl, req(path="/b", method="GET", route="x"), 0, 3) == 1
    assert admitted(rl, req(path="/a", method="GET", route="y"), 0, 3) == 1


def test_same_key_under_two_rules_uses_two_buckets() -> None:
    rl = limiter(
        rules=[
            {"name": "a", "rate": 1, "burst": 1, "match": {"path_prefix": "/a"}},
            {"name": "b", "rate": 1, "burst": 1},
        ]
    )
    assert admitted(rl, req(path="/a"), 0, 3) == 1
    assert admitted(rl, req(path="/b"), 0, 3) == 1


def test_dry_run_allows_and_counts_would_block() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 10, "burst": 5, "dry_run": True}])
    results = [rl.decide(req(), 0.0) for _ in range(8)]
    assert all(r.allowed for r in results)
    assert [r.would_block for r in results] == [False] * 5 + [True] * 3
    assert rl.counters["r"].would_block == 3
    assert rl.counters["r"].blocked == 0
    assert "Retry-After" not in dict(render_rate_limit_headers(results[-1]))
    # Would-blocks do not push the bucket's reopening further away.
    assert not rl.decide(req(), 0.1).would_block
    assert rl.decide(req(), 0.1).would_block


def test_global_dry_run_switch_overrides_rules() -> None:
    rl = limiter(dry_run=True, rules=[{"name": "r", "rate": 1, "burst": 1}])
    assert admitted(rl, req(), 0, 5) == 5
    assert rl.counters["r"].would_block == 4


def test_enforcing_counts_blocked() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 1, "burst": 1}])
    admitted(rl, req(), 0, 5)
    assert (rl.counters["r"].allowed, rl.counters["r"].blocked) == (1, 4)


def test_cost_spends_several_units() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 10, "burst": 5}])
    assert rl.decide(req(), 0, cost=3).remaining == 2
    assert not rl.decide(req(), 0, cost=3).allowed
    assert rl.decide(req(), 0, cost=2).allowed


def test_table_is_bounded_and_evicts_only_idle_keys() -> None:
    rl = limiter(max_keys=4, rules=[{"name": "r", "rate": 1, "burst": 2}])
    for i in range(4):
        rl.decide(req(ip=f"10.0.0.{i}"), 0.0)
    # All four are active (half a bucket spent, refilling for 1 s): no room for a fifth.
    fifth = rl.decide(req(ip="10.0.0.99"), 0.5)
    assert fifth.allowed and fifth.overflow
    assert len(rl) == 4
    assert not rl.is_tracked(req(ip="10.0.0.99"))
    # Each active key kept its state: one more is admitted, then refused.
    for i in range(4):
        assert rl.decide(req(ip=f"10.0.0.{i}"), 0.5).allowed
        assert not rl.decide(req(ip=f"10.0.0.{i}"), 0.5).allowed
    # Later, keys that went idle make room and the new key gets its own bucket.
    rl.decide(req(ip="10.0.0.0"), 10.0)
    assert rl.decide(req(ip="10.0.0.42"), 10.0).overflow is False
    assert rl.is_tracked(req(ip="10.0.0.42"))
    assert rl.is_tracked(req(ip="10.0.0.0"))
    assert len(rl) == 4
    assert rl.evictions == 1


def test_overflow_bucket_is_itself_limited() -> None:
    rl = limiter(max_keys=1, rules=[{"name": "r", "rate": 1, "burst": 2}])
    rl.decide(req(ip="a"), 0.0)
    spoofed = [rl.decide(req(ip=f"spoof-{i}"), 0.0) for i in range(10)]
    assert sum(r.allowed for r in spoofed) == 2
    assert all(r.overflow for r in spoofed)
    assert rl.counters["r"].overflow == 10


def test_evict_idle_housekeeping_keeps_active_keys() -> None:
    rl = limiter(rules=[{"name": "r", "rate": 1, "burst": 1}])
    rl.decide(req(ip="old"), 0.0)
    rl.decide(req(ip="busy"), 5.0)
    assert rl.evict_idle(5.5) == 1
    assert rl.is_tracked(req(ip="busy"))
    assert not rl.is_tracked(req(ip="old"))


@settings(max_examples=200, deadline=None)
@given(
    max_keys=st.integers(1, 6),
    events=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 60)),  # (client, milliseconds advanced)
        min_size=1,
        max_size=120,
    ),
)
def test_bounded_table_decides_tracked_keys_like_an_unbounded_one(
    max_keys: int, events: list[tuple[int, int]]
) -> None:
    """Eviction never changes the decision of a key that keeps its own bucket.

    A reference limiter with room for every key runs alongside; whenever the bounded one
    decides a key from its own table entry (not the overflow bucket), both must agree —
    which fails if an active key had been evicted and restarted with a full bucket.
    """
    rule = {"name": "r", "rate": 5, "burst": 3}
    bounded = limiter(max_keys=max_keys, rules=[rule])
    reference = limiter(rules=[rule])
    now_ms = 0
    overflowed: set[int] = set()
    for client, advance in events:
        now_ms += advance
        request = req(ip=f"c{client}")
        ours = bounded.decide(request, now_ms / 1000)
        theirs = reference.decide(request, now_ms / 1000)
        assert len(bounded) <= max_keys
        if ours.overflow:
            overflowed.add(client)
        elif client not in overflowed:
            assert ours.allowed == theirs.allowed
            assert ours.remaining == theirs.remaining


def test_reload_keeps_the_buckets_of_unchanged_rules_only() -> None:
    api = {"name": "api", "rate": 10, "burst": 5, "match": {"path_prefix": "/api"}}
    site = {"name": "site", "rate": 10, "burst": 3}
    old = limiter(rules=[api, site])
    assert admitted(old, req(path="/api/x"), 0.0, 10) == 5
    assert admitted(old, req(path="/"), 0.0, 10) == 3
    # A new rule first, `api` unchanged but moved, `site` edited.
    login = {"name": "login", "rate": 1, "burst": 1, "match": {"path_prefix": "/login"}}
    new = limiter(rules=[login, api, {**site, "burst": 4}])
    assert new.inherit(old) == 1
    assert admitted(new, req(path="/api/x"), 0.0, 10) == 0  # no fresh burst after a reload
    assert admitted(new, req(path="/"), 0.0, 10) == 4  # an edited rule starts afresh
    assert new.counters["api"].blocked == old.counters["api"].blocked > 0
