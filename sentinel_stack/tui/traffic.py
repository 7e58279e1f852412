"""Traffic as the proxy's access records tell it: rates, statuses, latency, who and what.

Pure and bounded: `TrafficModel.add` takes records and the second they arrived in;
`snapshot` computes what the Traffic panel shows. Windowed figures cover the last
`window` seconds; blocked counts and the live tail cover the whole session, bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sentinel_stack.tui.format import printable
from sentinel_stack.tui.series import HeavyHitters, LatencyWindow, RecentTop, SecondRing
from sentinel_stack.tui.wire import AccessView

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "other")
MAX_NAMES = 256  # routes, upstreams and agents come from the config; this caps a surprise


class _Second:
    """What one second of traffic adds up to."""

    __slots__ = ("blocked", "count", "statuses", "upstreams")

    def __init__(self) -> None:
        self.count = 0
        self.blocked = 0
        self.statuses = [0] * len(STATUS_CLASSES)
        self.upstreams: dict[str, list[int]] = {}  # name -> [requests, failures]

    def clear(self) -> None:
        self.count = 0
        self.blocked = 0
        self.statuses[:] = [0] * len(STATUS_CLASSES)
        self.upstreams.clear()


def status_class(status: int) -> int:
    return status // 100 - 2 if 200 <= status < 600 else 4


def block_reason(record: AccessView) -> str:
    """Why the deciding agent refused: its rule ids, else tags, else the proxy's error."""
    if record.rule_ids:
        return ",".join(record.rule_ids[:3])
    if record.error:
        return record.error
    for call in record.agents:
        if call.agent == record.decided_by:
            return call.error or call.action
    return ",".join(record.tags[:3]) or "blocked"


@dataclass(frozen=True)
class UpstreamRow:
    name: str
    requests: int
    failures: int
    targets: str = ""  # from the proxy's /status: "2/2 healthy", breaker states
    breaker: str = ""


@dataclass(frozen=True)
class AgentRow:
    name: str
    calls: int
    errors: int
    p50: float | None
    p95: float | None
    breaker: str = ""
    connected: bool | None = None
    last_error: str = ""


@dataclass(frozen=True)
class TrafficSnapshot:
    rate_series: list[float]
    rate: float
    total: int
    window: int
    statuses: dict[str, int]
    latency: tuple[float | None, ...]  # p50, p95, p99 (ms)
    top_routes: list[tuple[str, int]]
    top_clients: list[tuple[str, int]]
    blocked: list[tuple[tuple[str, str], int]]
    blocked_total: int
    upstreams: list[UpstreamRow]
    agents: list[AgentRow]
    proxy_status_age: float | None = None


def _pair() -> list[int]:
    return [0, 0]


def _clear_pair(pair: list[int]) -> None:
    pair[0] = pair[1] = 0


class _AgentStats:
    """One agent's latency and [calls, errors] per second, over the window."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.latency = LatencyWindow(window)
        self.counts: SecondRing[list[int]] = SecondRing(window, _pair, _clear_pair)

    def add(self, latency_ms: float, failed: bool, second: int) -> None:
        self.latency.add(latency_ms, second)
        pair = self.counts.slot(second)
        pair[0] += 1
        pair[1] += failed

    def totals(self, now: int) -> tuple[int, int]:
        calls = errors = 0
        for pair in self.counts.recent(now, self.window):
            calls += pair[0]
            errors += pair[1]
        return calls, errors


class TrafficModel:
    def __init__(self, window: int = 60, history: int = 300, tail: int = 500) -> None:
        self.window = window
        self.history = history
        self.total = 0
        self._seconds: SecondRing[_Second] = SecondRing(history, _Second, _Second.clear)
        self._latency = LatencyWindow(window)
        self._routes: RecentTop[str] = RecentTop(window // 2 or 1, 128)
        self._clients: RecentTop[str] = RecentTop(window // 2 or 1, 128)
        self._blocked: HeavyHitters[tuple[str, str]] = HeavyHitters(128)
        self._agents: dict[str, _AgentStats] = {}
        self.tail: deque[AccessView] = deque(maxlen=tail)
        self.proxy_status: dict[str, Any] | None = None
        self.proxy_status_second: int | None = None

    def add(self, records: Iterable[AccessView], second: int) -> None:
        slot = self._seconds.slot(second)
        latency = self._latency
        routes = self._routes
        clients = self._clients
        statuses = slot.statuses
        upstreams = slot.upstreams
        n = 0
        for record in records:
            n += 1
            statuses[status_class(record.status)] += 1
            latency.add(record.latency_ms, second)
            routes.add(record.route or "(no route)", second)
            if record.client_ip:
                clients.add(record.client_ip, second)
            if record.upstream:
                counts = upstreams.get(record.upstream)
                if counts is None:
                    if len(upstreams) >= MAX_NAMES:
                        continue
                    counts = upstreams[record.upstream] = [0, 0]
                counts[0] += 1
                if record.status >= 500 or (record.error and not record.decided_by):
                    counts[1] += 1
            if record.decided_by:
                slot.blocked += 1
                self._blocked.add((record.decided_by, block_reason(record)))
            for call in record.agents:
                self._agent_call(call.agent, call.latency_ms, bool(call.error), second)
            self.tail.append(record)
        slot.count += n
        self.total += n

    def _agent_call(self, agent: str, latency_ms: float, failed: bool, second: int) -> None:
        stats = self._agents.get(agent)
        if stats is None:
            if len(self._agents) >= MAX_NAMES:
                return
            stats = self._agents[agent] = _AgentStats(self.window)
        stats.add(latency_ms, failed, second)

    def set_proxy_status(self, status: dict[str, Any] | None, second: int) -> None:
        """The proxy's admin /status (upstream target health, agent breakers), when reachable."""
        self.proxy_status = status
        self.proxy_status_second = second if status is not None else None

    def snapshot(self, now: int, points: int = 120) -> TrafficSnapshot:
        window = self.window
        statuses = [0] * len(STATUS_CLASSES)
        upstreams: dict[str, list[int]] = {}
        blocked = 0
        count = 0
        for slot in self._seconds.recent(now, window):
            count += slot.count
            blocked += slot.blocked
            for index, value in enumerate(slot.statuses):
                statuses[index] += value
            for name, (requests, failures) in slot.upstreams.items():
                row = upstreams.setdefault(name, [0, 0])
                row[0] += requests
                row[1] += failures
        # the current second is still filling: rates use the seconds before it
        series = self._seconds.series(now - 1, points, lambda s: float(s.count))
        rate = self.snapshot_rate(now)
        return TrafficSnapshot(
            rate_series=series,
            rate=rate,
            total=self.total,
            window=window,
            statuses=dict(zip(STATUS_CLASSES, statuses, strict=True)) | {"blocked": blocked},
            latency=self._latency.percentiles(now),
            top_routes=self._routes.top(8, now),
            top_clients=self._clients.top(8, now),
            blocked=self._blocked.top(8),
            blocked_total=self._blocked.total,
            upstreams=self._upstream_rows(upstreams),
            agents=self._agent_rows(now),
            proxy_status_age=(
                now - self.proxy_status_second if self.proxy_status_second is not None else None
            ),
        )

    def snapshot_rate(self, now: int) -> float:
        """Requests/s over the last five complete seconds."""
        return sum(self._seconds.series(now - 1, 5, lambda s: float(s.count))) / 5

    def _upstream_rows(self, counts: dict[str, list[int]]) -> list[UpstreamRow]:
        admin: dict[str, Any] = (self.proxy_status or {}).get("upstreams") or {}
        rows = []
        for name in sorted(set(counts) | set(admin)):
            requests, failures = counts.get(name, (0, 0))
            targets = admin.get(name, {}).get("targets") or []
            healthy = sum(1 for t in targets if t.get("available"))
            open_breakers = [t.get("target", "?") for t in targets if t.get("breaker") == "open"]
            rows.append(
                UpstreamRow(
                    name,
                    requests,
                    failures,
                    f"{healthy}/{len(targets)} up" if targets else "",
                    ("open: " + ", ".join(open_breakers)) if open_breakers else "",
                )
            )
        return rows

    def _agent_rows(self, now: int) -> list[AgentRow]:
        admin: dict[str, Any] = (self.proxy_status or {}).get("agents") or {}
        rows = []
        for name in sorted(set(self._agents) | set(admin)):
            stats = self._agents.get(name)
            link = admin.get(name, {})
            calls, errors = stats.totals(now) if stats else (0, 0)
            p50, p95 = stats.latency.percentiles(now, (0.5, 0.95)) if stats else (None, None)
            rows.append(
                AgentRow(
                    name,
                    calls,
                    errors,
                    p50,
                    p95,
                    str(link.get("breaker", "")),
                    link.get("connected"),
                    str(link.get("last_error") or ""),
                )
            )
        return rows

    def tail_matching(self, text: str, limit: int) -> list[AccessView]:
        """The newest ``limit`` records of the tail, oldest first, that mention ``text``."""
        needle = text.lower()
        found: list[AccessView] = []
        for record in reversed(self.tail):
            if not needle or needle in tail_line(record).lower():
                found.append(record)
                if len(found) >= limit:
                    break
        found.reverse()
        return found


def tail_line(record: AccessView) -> str:
    """One record as a line of the live tail."""
    decided = f" ⛔ {record.decided_by}" if record.decided_by else ""
    return printable(
        f"{record.status:3d} {record.method[:8]:<6} {record.path[:60]:<24} "
        f"{record.latency_ms:8.1f}ms {record.route or '-'} → {record.upstream or '-'} "
        f"{record.client_ip}{decided}"
    )
