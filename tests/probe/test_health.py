"""Health samples and the lost-events alert."""

from __future__ import annotations

from sentinel_stack.probe.backend import BackendStatus
from sentinel_stack.probe.health import HealthMonitor, status_line


def test_rates_and_a_lost_events_alert_once_per_increase() -> None:
    monitor = HealthMonitor("probe", "stack")
    status = BackendStatus(name="bpftrace", programs=["exec", "open"], programs_attached=2)
    status.ready = True
    first, alert = monitor.sample(100.0, status, events_total=0, hub_connected=True, hub_dropped=0)
    assert alert is None and first.events_per_second == 0.0
    status.lost_events = 40
    second, alert = monitor.sample(102.0, status, 5000, hub_connected=True, hub_dropped=0)
    assert second.events_per_second == 2500.0 and second.lost_events == 40
    assert alert is not None and alert.lost_events == 40 and alert.window_seconds == 2.0
    assert alert.rule == "probe.kernel_events_lost" and alert.severity == "warning"
    _, again = monitor.sample(103.0, status, 5000, hub_connected=True, hub_dropped=0)
    assert again is None


def test_degraded_status_line_says_why() -> None:
    status = BackendStatus(name="procfs", degraded=True, reason="not running as root")
    health, _ = HealthMonitor("probe", "stack").sample(1.0, status, 0, False, 3)
    line = status_line(health)
    assert line.startswith("DEGRADED procfs (not running as root)")
    assert "hub down" in line
