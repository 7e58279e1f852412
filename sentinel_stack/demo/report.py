"""What a simulation run found: pure functions from received alerts to results and reports.

Times are the runner's monotonic clock (seconds), passed in: an alert counts for a scenario
when it arrives between the scenario's start (the attack request is sent) and its end (all
expected alerts seen plus a short settle, or the timeout).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BenignResult",
    "ScenarioResult",
    "SeenAlert",
    "benign_json",
    "exit_status",
    "expected_seen",
    "render_benign",
    "render_line",
    "render_table",
    "results_json",
    "scenario_result",
]


@dataclass(frozen=True, slots=True)
class SeenAlert:
    """One alert as the runner received it from the hub."""

    rule: str
    received: float
    severity: str = ""
    summary: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    summary: str
    expected: tuple[str, ...]
    latencies: Mapping[str, float]  # expected rule -> seconds from start to its first alert
    others: tuple[str, ...]  # other rules seen in the window, sorted
    error: str | None = None  # the attack itself failed (explains a missing alert)

    @property
    def fired(self) -> tuple[str, ...]:
        return tuple(rule for rule in self.expected if rule in self.latencies)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(rule for rule in self.expected if rule not in self.latencies)

    @property
    def passed(self) -> bool:
        return not self.missing

    @property
    def time_to_alert(self) -> float | None:
        """Until every expected alert had arrived; None when one is missing."""
        return max(self.latencies.values()) if self.passed and self.latencies else None


def _in_window(alerts: Iterable[SeenAlert], start: float, end: float) -> list[SeenAlert]:
    return sorted((a for a in alerts if start <= a.received <= end), key=lambda a: a.received)


def expected_seen(expected: Iterable[str], start: float, alerts: Iterable[SeenAlert]) -> bool:
    """Has every expected rule fired since ``start``?"""
    seen = {a.rule for a in alerts if a.received >= start}
    return set(expected) <= seen


def scenario_result(
    name: str,
    summary: str,
    expected: tuple[str, ...],
    start: float,
    end: float,
    alerts: Iterable[SeenAlert],
    error: str | None = None,
) -> ScenarioResult:
    latencies: dict[str, float] = {}
    others: set[str] = set()
    for alert in _in_window(alerts, start, end):
        if alert.rule in expected:
            latencies.setdefault(alert.rule, alert.received - start)
        else:
            others.add(alert.rule)
    return ScenarioResult(name, summary, expected, latencies, tuple(sorted(others)), error)


def exit_status(results: Iterable[ScenarioResult]) -> int:
    """0 when every expected alert fired, else 1."""
    return 0 if all(r.passed for r in results) else 1


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def render_line(result: ScenarioResult) -> str:
    """One line per finished scenario, for progress output."""
    verdict = "PASS" if result.passed else "FAIL"
    detail = _ms(result.time_to_alert) if result.passed else f"missing {', '.join(result.missing)}"
    failed = f" (attack failed: {result.error})" if result.error else ""
    return f"{verdict} {result.name}: {detail}{failed}"


def render_table(results: Iterable[ScenarioResult], notes: Iterable[str] = ()) -> str:
    """A fixed-width table, one row per scenario, then what went wrong and the verdict."""
    results = list(results)
    rows = [("scenario", "expected alert(s)", "fired", "time to alert", "result")]
    for r in results:
        fired = ", ".join(r.fired) or "-"
        if r.others:
            fired += f" (+{len(r.others)} other)"
        rows.append(
            (
                r.name,
                ", ".join(r.expected),
                fired,
                _ms(r.time_to_alert),
                "PASS" if r.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if r.missing:
            lines.append(f"{r.name}: missing {', '.join(r.missing)}")
        if r.error:
            lines.append(f"{r.name}: the attack itself failed: {r.error}")
        if r.others:
            lines.append(f"{r.name}: also fired {', '.join(r.others)}")
    lines.extend(notes)
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} scenarios detected")
    return "\n".join(lines)


def results_json(
    results: Iterable[ScenarioResult], context: Mapping[str, Any], notes: Iterable[str] = ()
) -> dict[str, Any]:
    results = list(results)
    return {
        **context,
        "passed": all(r.passed for r in results),
        "notes": list(notes),
        "scenarios": [
            {
                "name": r.name,
                "summary": r.summary,
                "expected": list(r.expected),
                "fired": list(r.fired),
                "missing": list(r.missing),
                "others": list(r.others),
                "latency_ms": {k: round(v * 1000, 1) for k, v in r.latencies.items()},
                "time_to_alert_ms": None
                if r.time_to_alert is None
                else round(r.time_to_alert * 1000, 1),
                "error": r.error,
                "passed": r.passed,
            }
            for r in results
        ],
    }


@dataclass(frozen=True, slots=True)
class BenignResult:
    """A benign-traffic window: what was sent and every alert that arrived meanwhile."""

    seconds: float
    requests: int
    statuses: Mapping[int, int]
    errors: Mapping[str, int]
    alerts: tuple[SeenAlert, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.alerts


def render_benign(result: BenignResult) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items())) or "none"
    lines = [
        f"benign traffic for {result.seconds:.0f} s: {result.requests} requests "
        f"({statuses}); transport errors: {sum(result.errors.values())}",
        f"alerts during the window: {len(result.alerts)}",
    ]
    for rule, count in Counter(a.rule for a in result.alerts).most_common():
        lines.append(f"  {rule} x{count}")
    lines.append("PASS: no alert" if result.passed else "FAIL: benign traffic raised alerts")
    return "\n".join(lines)


def benign_json(result: BenignResult, context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "seconds": round(result.seconds, 1),
        "requests": result.requests,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "errors": dict(result.errors),
        "alerts": [
            {"rule": a.rule, "severity": a.severity, "summary": a.summary, "source": a.source}
            for a in result.alerts
        ],
        "passed": result.passed,
    }
