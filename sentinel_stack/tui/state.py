"""Everything the TUI shows, as one pure model fed by control-API events.

The feed calls the `on_*` methods as data arrives (any rate); the app reads snapshots at
its own pace (≤ the refresh rate) and only for what is on screen. `changed` counts updates
per section so a panel can tell whether it has anything new to draw.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sentinel_stack.tui.alerts import SEVERITY_ORDER, AlertBook
from sentinel_stack.tui.format import printable
from sentinel_stack.tui.logs import LogBook
from sentinel_stack.tui.probe import ProbeModel
from sentinel_stack.tui.processes import Health, ProcessTable
from sentinel_stack.tui.traffic import TrafficModel
from sentinel_stack.tui.wire import (
    AccessView,
    BusEvent,
    LogEvent,
    NoticeEvent,
    StackStatus,
    StateEvent,
)

SECTIONS = ("header", "processes", "logs", "traffic", "alerts", "probe")


@dataclass(frozen=True)
class HeaderSnapshot:
    stack: str
    uptime: float
    health: Health
    probe: str
    alerts: tuple[tuple[str, int], ...]  # by severity, most severe first
    rate: float
    notice: str
    notice_level: str


class TuiState:
    def __init__(self, *, window: int = 60, log_lines: int = 2000) -> None:
        self.processes = ProcessTable()
        self.traffic = TrafficModel(window=window)
        self.alerts = AlertBook()
        self.probe = ProbeModel()
        self.logs = LogBook(log_lines)
        self.notices: deque[NoticeEvent] = deque(maxlen=200)
        self.changed: Counter[str] = Counter()
        self.other_events = 0

    def _touch(self, *sections: str) -> None:
        for section in sections:
            self.changed[section] += 1

    # ---- inputs ---------------------------------------------------------------------------

    def on_status(self, status: StackStatus, now: float) -> None:
        self.processes.on_status(status, now)
        counters = status.events
        self.probe.on_counters(counters.by_kind, now, counters.dropped, counters.malformed)
        self.logs.forget_others(row.name for row in status.children)
        self._touch("header", "processes", "probe")

    def on_bus(self, events: Iterable[BusEvent]) -> None:
        for event in events:
            if isinstance(event, LogEvent):
                self.logs.add(event.child, event.stream, event.time, event.line)
                self._touch("logs")
            elif isinstance(event, StateEvent):
                self.processes.on_state(event)
                self._touch("processes", "header")
            else:
                self.notices.append(event)
                if event.message.startswith("stopping the stack"):
                    self.processes.stopping = True
                self._touch("header")

    def on_access(self, records: list[AccessView], second: int) -> None:
        self.traffic.add(records, second)
        self._touch("traffic")

    def on_hub_event(self, raw: Mapping[str, Any]) -> None:
        """A non-access hub event: alerts and probe health; others are only counted."""
        kind = str(raw.get("kind", ""))
        if kind == "alert" or kind.startswith("alert."):
            self.alerts.add(raw)
            self._touch("alerts", "header")
        elif kind == "remediation":
            self.alerts.add_remediation(raw)
            self._touch("alerts")
        elif kind == "probe.health":
            self.probe.on_health(raw)
            self._touch("probe", "header")
        else:
            self.other_events += 1

    def on_proxy_status(self, status: dict[str, Any] | None, second: int) -> None:
        self.traffic.set_proxy_status(status, second)
        self._touch("traffic")

    def on_disconnect(self) -> None:
        self.processes.gone = True
        self._touch("header", "processes")

    # ---- outputs --------------------------------------------------------------------------

    def header(self, now: float, second: int) -> HeaderSnapshot:
        health = self.probe.health
        if health is None:
            probe = "none" if not self._has_probe() else "starting"
        else:
            probe = health.backend + (" (degraded)" if health.degraded else "")
        notice = self.notices[-1] if self.notices else None
        return HeaderSnapshot(
            stack=printable(self.processes.stack.name or "?"),
            uptime=self.processes.stack_uptime(now),
            health=self.processes.health(),
            probe=printable(probe),
            alerts=tuple((s, self.alerts.counts.get(s, 0)) for s in SEVERITY_ORDER),
            rate=self.traffic.snapshot_rate(second),
            notice=printable(notice.message.splitlines()[0]) if notice else "",
            notice_level=notice.level if notice else "info",
        )

    def _has_probe(self) -> bool:
        return any(row.kind == "probe" for row in self.processes.children.values())
