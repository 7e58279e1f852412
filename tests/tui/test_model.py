"""The TUI's pure model: bounded statistics, alerts, processes, logs, probe rates, wire decoding."""

from __future__ import annotations

import random
import statistics

import msgspec
import pytest

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.alerts import AlertBook, alert_from, severity_level
from sentinel_stack.tui.logs import LogBook, line_level
from sentinel_stack.tui.probe import ProbeModel
from sentinel_stack.tui.processes import ProcessTable
from sentinel_stack.tui.series import (
    BOUNDS,
    HeavyHitters,
    LatencyWindow,
    RecentTop,
    SecondRing,
    bucket_of,
    percentiles,
)
from sentinel_stack.tui.state import TuiState
from sentinel_stack.tui.traffic import TrafficModel, block_reason, status_class, tail_line
from sentinel_stack.tui.wire import ACCESS, BUS, AccessView, LogEvent, StateEvent, status_from
from tests.tui.fakes import access, alert, children, status

# ---- series ----------------------------------------------------------------------------------


def test_second_ring_recycles_slots_and_reports_only_recent_seconds():
    ring: SecondRing[list[int]] = SecondRing(5, lambda: [0], lambda s: s.__setitem__(0, 0))
    for second in range(10, 20):
        ring.slot(second)[0] += second
    assert sorted(s[0] for s in ring.recent(19, 3)) == [17, 18, 19]
    assert ring.series(19, 5, lambda s: s[0]) == [15, 16, 17, 18, 19]
    # seconds without data read as zero, not as what the recycled slot held before
    assert ring.series(25, 5, lambda s: s[0]) == [0, 0, 0, 0, 0]
    assert list(ring.recent(25, 5)) == []


def test_latency_percentiles_are_within_one_bucket():
    rng = random.Random(7)
    samples = [rng.lognormvariate(1.5, 1.0) for _ in range(20_000)]
    window = LatencyWindow(60)
    for i, value in enumerate(samples):
        window.add(value, 100 + i % 10)
    p50, p95, p99 = window.percentiles(109)
    exact = statistics.quantiles(samples, n=100)
    for got, want in ((p50, exact[49]), (p95, exact[94]), (p99, exact[98])):
        assert got is not None
        assert abs(got - want) / want < 0.15


def test_latency_window_forgets_old_seconds():
    window = LatencyWindow(10)
    window.add(500.0, 1)
    window.add(1.0, 20)
    assert window.percentiles(20) == (pytest.approx(1.0, rel=0.15),) * 3
    assert percentiles([0] * 5, (0.5,)) == (None,)


def test_bucket_bounds_cover_fast_and_slow():
    assert bucket_of(0.0) == 0
    assert bucket_of(10**9) == len(BOUNDS)
    assert BOUNDS[0] < 0.1 and BOUNDS[-1] > 60_000


def test_heavy_hitters_stay_bounded_and_keep_the_heavy_keys():
    hitters: HeavyHitters[str] = HeavyHitters(capacity=16)
    rng = random.Random(1)
    for i in range(50_000):
        hitters.add("attacker" if i % 10 == 0 else f"10.0.{rng.randrange(256)}.{i % 251}")
    assert len(hitters.counts) == 16
    top, count = hitters.top(1)[0]
    assert top == "attacker" and count >= 5000
    assert hitters.total == 50_000


def test_recent_top_rotates_generations():
    top: RecentTop[str] = RecentTop(period=10, capacity=8)
    top.add("old", 0, 5)
    top.add("new", 12, 3)
    assert dict(top.top(5, 12)) == {"old": 5, "new": 3}
    assert dict(top.top(5, 25)) == {"new": 3}  # "old" is two generations back
    assert top.top(5, 100) == []


# ---- traffic ---------------------------------------------------------------------------------


def test_traffic_snapshot_counts_statuses_latency_routes_clients_blocks():
    model = TrafficModel(window=60)
    for second in range(100, 110):
        model.add([access(second * 10 + i) for i in range(10)], second)
    model.add([access(1, blocked=True), access(2, status=502), access(3, status=301)], 110)
    snap = model.snapshot(111)
    assert snap.total == 103
    assert snap.statuses["2xx"] == 100
    assert (snap.statuses["3xx"], snap.statuses["4xx"], snap.statuses["5xx"]) == (1, 1, 1)
    assert snap.statuses["blocked"] == 1
    assert snap.rate == pytest.approx((10 * 4 + 3) / 5)
    assert snap.rate_series[-1] == 3 and len(snap.rate_series) == 120
    assert snap.latency[0] is not None and snap.latency[0] <= snap.latency[2]  # type: ignore[operator]
    assert {route for route, _ in snap.top_routes} == {"api", "static"}
    assert len(snap.top_clients) == 5
    assert snap.blocked == [(("waf", "942100"), 1)]
    assert [(u.name, u.requests, u.failures) for u in snap.upstreams] == [("demo", 103, 1)]
    (waf,) = snap.agents
    assert waf.name == "waf" and waf.calls == 103 and waf.p95 is not None


def test_traffic_merges_the_proxy_admin_status():
    model = TrafficModel()
    model.set_proxy_status(
        {
            "upstreams": {
                "demo": {
                    "targets": [
                        {"target": "a:1", "available": True, "breaker": "closed"},
                        {"target": "b:2", "available": False, "breaker": "open"},
                    ]
                }
            },
            "agents": {"waf": {"connected": False, "breaker": "open", "last_error": "refused"}},
        },
        5,
    )
    snap = model.snapshot(7)
    (upstream,) = snap.upstreams
    assert upstream.targets == "1/2 up" and upstream.breaker == "open: b:2"
    (agent,) = snap.agents
    assert agent.connected is False and agent.breaker == "open" and agent.last_error == "refused"
    assert snap.proxy_status_age == 2


def test_traffic_memory_is_bounded_under_a_flood_of_distinct_clients():
    model = TrafficModel(window=60, tail=100)
    for second in range(0, 30):
        model.add(
            [
                msgspec.structs.replace(access(i), client_ip=f"198.51.{i % 256}.{second}")
                for i in range(2000)
            ],
            second,
        )
    assert len(model.tail) == 100
    assert len(model._clients._current.counts) <= 128
    assert len(model._clients._previous.counts) <= 128
    assert model.total == 60_000


def test_status_class_and_block_reason():
    assert [status_class(s) for s in (200, 304, 404, 503, 0, 99)] == [0, 1, 2, 3, 4, 4]
    blocked = access(1, blocked=True)
    assert block_reason(blocked) == "942100"
    assert block_reason(msgspec.structs.replace(blocked, rule_ids=[])) == "block"
    assert block_reason(msgspec.structs.replace(blocked, rule_ids=[], error="agent timeout")) == (
        "agent timeout"
    )
    assert "⛔ waf" in tail_line(blocked)


def test_tail_matching_filters_newest_first_limit():
    model = TrafficModel(tail=50)
    model.add([access(i) for i in range(50)], 1)
    found = model.tail_matching("10.0.0.3", 3)
    assert len(found) == 3 and all(r.client_ip == "10.0.0.3" for r in found)
    assert found[-1].request_id == "req-48"


# ---- alerts ----------------------------------------------------------------------------------


def test_alert_fields_under_the_names_producers_use():
    a = alert_from(alert(1, "critical"), 1)
    assert (a.level, a.rule, a.technique, a.tactic) == (
        "critical",
        "rule-1",
        "T1059.004",
        "execution",
    )
    assert [s.kind for s in a.chain] == ["access", "kernel.exec"]
    assert a.chain[0].summary == "POST /upload → 200"
    assert "sh" in a.chain[1].summary and "pid 999" in a.chain[1].summary
    nested = alert_from({"rule_id": "r", "attack": {"technique_id": "T1611", "tactic": "esc"}}, 2)
    assert (nested.rule, nested.technique, nested.tactic, nested.level) == (
        "r",
        "T1611",
        "esc",
        "medium",
    )
    tagged = alert_from({"rule": "x", "tags": ["attack.t1003.008"], "severity": "warning"}, 3)
    assert tagged.technique == "T1003.008" and tagged.level == "medium"
    probe = alert_from({"kind": "alert", "rule": "probe.kernel_events_lost", "summary": "lost"}, 4)
    assert probe.chain == () and probe.technique == ""


def test_alert_book_orders_newest_first_or_by_severity_and_counts():
    book = AlertBook(capacity=3)
    for i, severity in enumerate(("low", "critical", "medium", "high")):
        book.add(alert(i, severity))
    assert [a.rule for a in book.listing()] == ["rule-3", "rule-2", "rule-1"]
    assert [a.level for a in book.listing(by_severity=True)] == ["critical", "high", "medium"]
    assert book.counts == {"low": 1, "critical": 1, "medium": 1, "high": 1}
    assert [a.rule for a in book.listing(text="RULE-2")] == ["rule-2"]
    assert book.find(4) is not None and book.find(1) is None  # evicted
    assert severity_level("FATAL") == "critical" and severity_level("whatever") == "medium"


# ---- processes and health --------------------------------------------------------------------


def test_process_rows_follow_state_events_and_uptime_keeps_counting():
    table = ProcessTable()
    table.on_status(status(), 10.0)
    assert table.health().word == "ok"
    rows = {r.name: r for r in table.rows(15.0)}
    assert rows["demo"].uptime == pytest.approx(125.0)
    table.on_state(StateEvent("waf", "backoff", "running", "exit 1", None, 0.0))
    health = table.health()
    assert (health.word, health.failing) == ("degraded", ("waf",))
    assert "waf backoff" in health.reason
    assert {r.name: r for r in table.rows(15.0)}["waf"].uptime is None
    table.on_state(StateEvent("new", "running", "starting", "", 77, 0.0))
    assert {r.name: r for r in table.rows(15.0)}["new"].pid == 77
    table.on_status(status(failure="proxy went fatal"), 20.0)
    assert table.health().word == "failed"
    table.gone = True
    assert table.health().word == "stopped"


def test_process_sorting():
    table = ProcessTable()
    table.on_status(status(), 0.0)
    assert [r.name for r in table.rows(0)] == ["demo", "probe", "proxy", "waf"]
    table.sort_by("cpu")
    assert [r.name for r in table.rows(0)] == ["proxy", "probe", "waf", "demo"]
    table.sort_by("cpu")  # again: the other way
    assert table.rows(0)[0].name == "demo"
    assert table.cycle_sort() == "rss"
    seen = {table.cycle_sort() for _ in range(8)}
    assert seen == {"name", "kind", "state", "pid", "uptime", "restarts", "cpu", "rss"}


# ---- logs ------------------------------------------------------------------------------------


def test_line_levels():
    assert line_level("stdout", "2024 [ERROR] boom") == "error"
    assert line_level("stderr", '{"level": "warn", "msg": "x"}') == "warning"
    assert line_level("stdout", "INFO started") == "info"
    assert line_level("stderr", "plain stderr line") == "info"
    assert line_level("stdout", "DEBUG x") == "debug"
    assert line_level("stdout", "x" * 100 + " ERROR late in the line") == "info"


def test_log_book_filters_backfills_and_stays_bounded():
    book = LogBook(lines_per_child=5)
    for i in range(8):
        book.add("web", "stdout", 100.0 + i, f"line {i} {'ERROR' if i % 2 else 'INFO'}")
    assert len(book.lines("web")) == 5
    assert [e.line for e in book.lines("web", "error")] == [
        "line 3 ERROR",
        "line 5 ERROR",
        "line 7 ERROR",
    ]
    assert [e.line for e in book.lines("web", text="LINE 4")] == ["line 4 INFO"]
    assert [e.line for e in book.newest("web", 2)] == ["line 6 INFO", "line 7 ERROR"]
    assert book.added["web"] == 8
    book.backfill("web", [("stdout", 50.0, "old"), ("stdout", 104.0, "duplicate of live")])
    assert book.epoch["web"] == 1 and "web" in book.backfilled
    assert book.lines("web")[0].line != "duplicate of live"
    book.backfill("db", [("stdout", 1.0, "only old")])
    assert [e.line for e in book.lines("db")] == ["only old"]
    book.forget_others(["db"])
    assert book.lines("web") == []


# ---- probe -----------------------------------------------------------------------------------


def test_probe_rates_from_hub_counters_and_health():
    probe = ProbeModel()
    probe.on_counters({"kernel.exec": 10, "access": 5}, 100.0)
    assert probe.snapshot().rates == []
    probe.on_counters({"kernel.exec": 30, "kernel.open": 100, "access": 5}, 102.0)
    snap = probe.snapshot()
    assert snap.rates == [("kernel.open", 50.0), ("kernel.exec", 10.0)]
    assert snap.other_rates == [("access", 0.0)]
    assert snap.rate_series == [60.0]
    probe.on_health({"kind": "probe.health", "backend": "bpftrace", "lost_events": 3, "new": 1})
    assert probe.snapshot().health is not None and probe.snapshot().health.lost_events == 3  # type: ignore[union-attr]


# ---- the whole state and the wire ------------------------------------------------------------


def test_state_routes_events_to_sections_and_builds_the_header():
    state = TuiState()
    state.on_status(status(), 0.0)
    state.on_bus(
        [LogEvent("demo", "stdout", 1.0, "hello"), StateEvent("waf", "fatal", "", "", None, 1)]
    )
    state.on_hub_event(alert(1, "critical"))
    state.on_hub_event({"kind": "probe.health", "backend": "procfs"})
    state.on_hub_event({"kind": "kernel.exec"})
    state.on_access([access(1)], 5)
    header = state.header(3.0, 6)
    assert header.health.word == "degraded" and header.probe == "procfs"
    assert dict(header.alerts)["critical"] == 1
    assert header.rate == pytest.approx(0.2)
    assert state.other_events == 1
    assert all(
        state.changed[s] for s in ("header", "processes", "logs", "traffic", "alerts", "probe")
    )


def test_wire_decodes_batches_and_skips_a_bad_line():
    good = msgspec.json.encode({"id": 1, "event": msgspec.to_builtins(access(1))})
    bad = b'{"id": 1, "event": {"status": "not a number"}}'
    end = b'{"id": 1, "ok": true, "result": null}'
    decoded = ACCESS.decode([good, bad, good, end])
    assert [type(m.event).__name__ for m in decoded] == ["AccessView", "AccessView", "NoneType"]
    assert decoded[-1].ok is True
    bus = BUS.decode(
        [
            b'{"id":2,"event":{"type":"state","child":"a","state":"running","previous":"starting",'
            b'"reason":"","pid":1,"time":1.0}}',
            b'{"id":2,"event":{"type":"future-kind","x":1}}',
        ]
    )
    assert [type(m.event).__name__ for m in bus] == ["StateEvent"]
    parsed = status_from({"stack": {"name": "s", "extra": 1}, "children": [{"name": "a"}]})
    assert parsed.stack.name == "s" and parsed.children[0].state == "stopped"
    assert isinstance(AccessView(), AccessView) and children()


def test_formatting():
    assert [fmt.duration(s) for s in (None, 5, 65, 3700, 90000)] == [
        "-",
        "5s",
        "1m05s",
        "1h01m",
        "1d01h",
    ]
    assert [fmt.size(v) for v in (None, 10, 2048, 5 * 1024**3)] == ["-", "10B", "2.0K", "5.0G"]
    assert [fmt.millis(v) for v in (None, 0.5, 12.34, 250.0, 2500.0)] == [
        "-",
        "500µs",
        "12.3ms",
        "250ms",
        "2.50s",
    ]
    assert [fmt.rate(v) for v in (0.5, 42.0, 1500.0, 25_000.0)] == ["0.5", "42", "1.5k", "25k"]
    assert [fmt.count(v) for v in (5, 12_345, 2_500_000)] == ["5", "12k", "2.5M"]
    assert [fmt.share(a, b) for a, b in ((0, 0), (1, 200), (50, 100))] == ["0%", "0.5%", "50%"]


def test_control_characters_from_the_wire_never_reach_the_terminal():
    evil = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m"
    record = msgspec.structs.replace(access(1), path="/" + evil, client_ip=evil)
    line = tail_line(record)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line)
    assert alert_from({"rule": evil, "summary": evil, "chain": [{"summary": evil}]}, 1).summary == (
        fmt.printable(evil)
    )
    book = LogBook()
    book.add("web", "stdout", 1.0, evil)
    assert "\x1b" not in book.lines("web")[0].line
    table = ProcessTable()
    table.on_status(status([msgspec.structs.replace(children()[0], status=evil)]), 0.0)
    assert "\x1b" not in table.rows(0)[0].detail
    assert fmt.printable("plain text ok") == "plain text ok"


def test_a_growing_chain_is_one_alert_and_remediation_follows_its_alert():
    book = AlertBook()
    book.add({**alert(1, "medium"), "id": "x1", "chain_id": "c"})
    book.add(alert(2, "low"))
    latest = book.add({**alert(3, "critical"), "id": "x3", "chain_id": "c"})
    assert [a.rule for a in book.listing()] == ["rule-3", "rule-2"]
    assert book.counts == {"critical": 1, "low": 1, "medium": 0}
    book.add_remediation({"kind": "remediation", "alert_id": "x3", "summary": "kill 999"})
    book.add_remediation({"kind": "remediation", "summary": "no alert id: ignored"})
    assert [r["summary"] for r in book.remediations(latest)] == ["kill 999"]
    assert book.remediations(book.listing()[1]) == []
