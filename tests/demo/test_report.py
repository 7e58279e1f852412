"""Report logic: which alerts count for a scenario, latencies, verdicts, table and JSON."""

from __future__ import annotations

import json

from sentinel_stack.demo.report import (
    BenignResult,
    SeenAlert,
    benign_json,
    exit_status,
    expected_seen,
    render_benign,
    render_table,
    results_json,
    scenario_result,
)

EXPECTED = ("reverse_shell_dev_tcp", "reverse_shell_socket_stdio")


def alerts(*pairs: tuple[str, float]) -> list[SeenAlert]:
    return [
        SeenAlert(rule, received, "high", f"{rule} summary", "detector") for rule, received in pairs
    ]


def test_pass_when_every_expected_rule_fires_in_the_window() -> None:
    seen = alerts(
        ("reverse_shell_dev_tcp", 10.040),
        ("web_server_spawned_shell", 10.030),
        ("reverse_shell_socket_stdio", 10.120),
        ("reverse_shell_dev_tcp", 10.200),  # a repeat: the first one counts
    )
    result = scenario_result("reverse_shell", "s", EXPECTED, 10.0, 11.0, seen)
    assert result.passed
    assert result.fired == EXPECTED
    assert result.missing == ()
    assert round(result.latencies["reverse_shell_dev_tcp"], 3) == 0.040
    assert round(result.time_to_alert or 0, 3) == 0.120
    assert result.others == ("web_server_spawned_shell",)


def test_alerts_outside_the_window_do_not_count() -> None:
    seen = alerts(("reverse_shell_dev_tcp", 9.99), ("reverse_shell_socket_stdio", 11.01))
    result = scenario_result("reverse_shell", "s", EXPECTED, 10.0, 11.0, seen)
    assert not result.passed
    assert result.missing == EXPECTED
    assert result.time_to_alert is None
    assert result.others == ()


def test_a_missing_rule_fails_even_if_the_other_fired() -> None:
    seen = alerts(("reverse_shell_dev_tcp", 10.5))
    result = scenario_result("reverse_shell", "s", EXPECTED, 10.0, 11.0, seen, error="boom")
    assert not result.passed
    assert result.fired == ("reverse_shell_dev_tcp",)
    assert result.missing == ("reverse_shell_socket_stdio",)
    assert result.error == "boom"
    assert exit_status([result]) == 1


def test_expected_seen_only_counts_alerts_since_start() -> None:
    seen = alerts(("reverse_shell_dev_tcp", 1.0), ("reverse_shell_socket_stdio", 5.0))
    assert not expected_seen(EXPECTED, 2.0, seen)
    assert expected_seen(EXPECTED, 1.0, seen)
    assert expected_seen((), 99.0, seen)


def test_table_and_json_say_what_fired_and_what_is_missing() -> None:
    ok = scenario_result(
        "ptrace", "attach", ("ptrace_attach",), 0.0, 1.0, alerts(("ptrace_attach", 0.042))
    )
    bad = scenario_result(
        "ssrf", "fetch", ("upstream_ssrf",), 1.0, 6.0, alerts(("other", 1.5)), "answered 403"
    )
    table = render_table([ok, bad], ["note: the detector is stopped: expect alerts to be missing"])
    lines = table.splitlines()
    assert lines[0].split() == [
        "scenario",
        "expected",
        "alert(s)",
        "fired",
        "time",
        "to",
        "alert",
        "result",
    ]
    assert "42 ms" in lines[2] and lines[2].endswith("PASS")
    assert lines[3].endswith("FAIL") and "(+1 other)" in lines[3]
    assert "ssrf: missing upstream_ssrf" in table
    assert "ssrf: the attack itself failed: answered 403" in table
    assert "note: the detector is stopped" in table
    assert lines[-1] == "1/2 scenarios detected"
    data = json.loads(json.dumps(results_json([ok, bad], {"run_dir": "/r"}, ["n"])))
    assert data["run_dir"] == "/r" and data["passed"] is False and data["notes"] == ["n"]
    first, second = data["scenarios"]
    assert first == {
        "name": "ptrace",
        "summary": "attach",
        "expected": ["ptrace_attach"],
        "fired": ["ptrace_attach"],
        "missing": [],
        "others": [],
        "latency_ms": {"ptrace_attach": 42.0},
        "time_to_alert_ms": 42.0,
        "error": None,
        "passed": True,
    }
    assert second["missing"] == ["upstream_ssrf"] and second["time_to_alert_ms"] is None
    assert exit_status([ok]) == 0


def test_benign_verdict_is_zero_alerts() -> None:
    quiet = BenignResult(20.0, 400, {200: 380, 404: 20}, {})
    assert quiet.passed
    assert render_benign(quiet).endswith("PASS: no alert")
    noisy = BenignResult(20.0, 400, {200: 400}, {"OSError": 1}, tuple(alerts(("x", 1), ("x", 2))))
    assert not noisy.passed
    text = render_benign(noisy)
    assert "x x2" in text and "transport errors: 1" in text and text.endswith("raised alerts")
    data = benign_json(noisy, {"proxy": "p"})
    assert data["passed"] is False and len(data["alerts"]) == 2 and data["statuses"] == {"200": 400}
