"""The kernel probe at a glance: events/s by kind, losses, programs, backend.

Rates come from the event hub's per-kind counters in each `status` poll (so they are right
even when the TUI itself cannot keep up with the stream); the rest from `probe.health`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec


class ProbeHealthView(msgspec.Struct, frozen=True):
    time: float = 0.0
    source: str = "probe"
    backend: str = ""
    degraded: bool = False
    reason: str | None = None
    scope: str = ""
    programs: list[str] = []
    programs_attached: int = 0
    ready: bool = False
    events_per_second: float = 0.0
    events_total: int = 0
    lost_events: int = 0
    parse_errors: int = 0
    hub_connected: bool = False
    hub_dropped: int = 0


@dataclass(frozen=True)
class ProbeSnapshot:
    health: ProbeHealthView | None
    rates: list[tuple[str, float]]  # kind, events/s — kernel kinds, busiest first
    other_rates: list[tuple[str, float]]  # access, alert, … for context
    rate_series: list[float]  # kernel events/s, one point per poll
    hub_dropped: int
    hub_malformed: int


class ProbeModel:
    def __init__(self, history: int = 120) -> None:
        self.health: ProbeHealthView | None = None
        self._previous: tuple[float, dict[str, int]] | None = None
        self._rates: dict[str, float] = {}
        self._series: deque[float] = deque(maxlen=history)
        self._hub_dropped = 0
        self._hub_malformed = 0

    def on_health(self, raw: Mapping[str, Any]) -> None:
        self.health = msgspec.convert(raw, ProbeHealthView, strict=False)

    def on_counters(
        self, by_kind: Mapping[str, int], now: float, dropped: int = 0, malformed: int = 0
    ) -> None:
        """The hub's cumulative counts per kind at ``now`` (seconds, any monotonic origin)."""
        self._hub_dropped = dropped
        self._hub_malformed = malformed
        current = dict(by_kind)
        if self._previous is not None:
            then, before = self._previous
            elapsed = now - then
            if elapsed > 0:
                self._rates = {
                    kind: max(0, count - before.get(kind, 0)) / elapsed
                    for kind, count in current.items()
                }
                self._series.append(
                    sum(r for k, r in self._rates.items() if k.startswith("kernel."))
                )
        self._previous = (now, current)

    def snapshot(self) -> ProbeSnapshot:
        kernel = [(k, r) for k, r in self._rates.items() if k.startswith("kernel.")]
        other = [(k, r) for k, r in self._rates.items() if not k.startswith("kernel.")]
        return ProbeSnapshot(
            health=self.health,
            rates=sorted(kernel, key=lambda kr: (-kr[1], kr[0])),
            other_rates=sorted(other, key=lambda kr: (-kr[1], kr[0])),
            rate_series=list(self._series),
            hub_dropped=self._hub_dropped,
            hub_malformed=self._hub_malformed,
        )
