"""Health of the probe as data: rates, drops and the lost-events alert, from counters.

Pure: the service samples counters on a timer and publishes what `HealthMonitor.sample`
returns. Lost kernel events are an alert of their own (as Falco's drop alert): a gap in the
record is exactly what an attacker flooding the kernel would want to hide in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.backend import BackendStatus

__all__ = ["HealthMonitor", "status_line"]


@dataclass(slots=True)
class _Previous:
    time: float
    events: int
    lost: int


class HealthMonitor:
    def __init__(self, source: str, scope: str) -> None:
        self.source = source
        self.scope = scope
        self._previous: _Previous | None = None

    def sample(
        self,
        now: float,
        backend: BackendStatus,
        events_total: int,
        hub_connected: bool,
        hub_dropped: int,
    ) -> tuple[ev.ProbeHealth, ev.ProbeAlert | None]:
        previous = self._previous or _Previous(now, events_total, 0)
        elapsed = max(now - previous.time, 1e-9)
        rate = (events_total - previous.events) / elapsed if self._previous else 0.0
        health = ev.ProbeHealth(
            time=now,
            source=self.source,
            backend=backend.name,
            degraded=backend.degraded,
            reason=backend.reason,
            scope=self.scope,
            programs=list(backend.programs),
            programs_attached=backend.programs_attached,
            ready=backend.ready,
            events_per_second=round(rate, 1),
            events_total=events_total,
            lost_events=backend.lost_events,
            parse_errors=backend.parse_errors,
            hub_connected=hub_connected,
            hub_dropped=hub_dropped,
        )
        alert = None
        newly_lost = backend.lost_events - previous.lost
        if newly_lost > 0:
            alert = ev.ProbeAlert(
                time=now,
                source=self.source,
                rule="probe.kernel_events_lost",
                severity="critical" if newly_lost >= 10_000 else "warning",
                summary=(
                    f"{newly_lost} kernel events were lost in the last {elapsed:.1f}s: the "
                    "ring buffer overflowed, so activity in that window may be missing"
                ),
                lost_events=newly_lost,
                window_seconds=round(elapsed, 3),
            )
        self._previous = _Previous(now, events_total, backend.lost_events)
        return health, alert


def status_line(health: ev.ProbeHealth) -> str:
    """The short STATUS= line for sd_notify and logs."""
    state = "ready" if health.ready else "starting"
    head = f"{health.backend} {state}"
    if health.degraded:
        head = f"DEGRADED {health.backend} ({health.reason})"
    return (
        f"{head}; {health.programs_attached}/{len(health.programs)} programs; "
        f"{health.events_per_second:.0f} ev/s; lost {health.lost_events}; "
        f"parse errors {health.parse_errors}; hub {'up' if health.hub_connected else 'down'}"
    )
