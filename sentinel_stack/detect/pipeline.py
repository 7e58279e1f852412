"""The detector's pipeline: events in, alerts out, through pluggable analyzers and sinks.

    hub event ──► rule engine ──┐
              └─► analyzers ────┴─► alerts ──► analyzers' on_alert ──► sinks (hub, file, …)

The rule engine is one `Analyzer` among others (threat chains, baselines). Analyzers are
pure: they get the event and the time, and answer alerts; they never do I/O (a baseline
that persists does it in `tick`, through a path given in the context, or in its own task).
Sinks do the I/O: `submit` never blocks (a sink queues, and drops and counts when full),
`run` is the sink's background task in the detector's nursery.

Plug-ins: a module listed in `COMPONENT_MODULES` that defines
``detector_components(context: PipelineContext) -> Components`` contributes analyzers and
sinks; the detector imports each that exists, in order. So chains, baselines, sinks and
remediation live in their own modules and need no edit here.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sentinel_stack.detect.alert import Alert
from sentinel_stack.detect.events import DetectEvent

if TYPE_CHECKING:
    from sentinel_stack.config.schema import StackConfig
    from sentinel_stack.detect.context import StackView

__all__ = [
    "COMPONENT_MODULES",
    "AlertSink",
    "Analyzer",
    "BaseAnalyzer",
    "Components",
    "DetectorPipeline",
    "PipelineContext",
    "load_components",
]

log = logging.getLogger("sentinel_stack.detect.pipeline")

COMPONENT_MODULES: tuple[str, ...] = (
    "sentinel_stack.detect.chains",
    "sentinel_stack.detect.baselines",
    "sentinel_stack.detect.sinks",
    "sentinel_stack.detect.remediation",
)


@runtime_checkable
class Analyzer(Protocol):
    """Pure detection logic fed every event. Time is passed in; never read a clock inside."""

    name: str

    def observe(self, event: DetectEvent, now: float) -> list[Alert]:
        """Alerts this event raises (usually none)."""
        ...

    def on_alert(self, alert: Alert, now: float) -> list[Alert]:
        """Alerts raised by this alert (a chain that grows); called once per alert that the
        rules or any analyzer raised for the current event, never with its own output."""
        ...

    def tick(self, now: float) -> list[Alert]:
        """Called about once a second: expire windows, emit what waited for a window's end."""
        ...


class BaseAnalyzer:
    """No-op defaults, so an analyzer implements only what it needs."""

    name = "analyzer"

    def observe(self, event: DetectEvent, now: float) -> list[Alert]:
        return []

    def on_alert(self, alert: Alert, now: float) -> list[Alert]:
        return []

    def tick(self, now: float) -> list[Alert]:
        return []


@runtime_checkable
class AlertSink(Protocol):
    """Where alerts go. `submit` must not block or raise; `run` does the I/O until cancelled."""

    name: str

    def submit(self, alert: Alert) -> None: ...

    async def run(self) -> None: ...


@dataclass
class PipelineContext:
    """What plug-ins may build themselves from. Every field may be absent (a detector run by
    hand has no config and no run dir); plug-ins degrade, they do not fail."""

    config: StackConfig | None = None
    config_path: Path | None = None
    run_dir: Path | None = None
    rules_dir: Path | None = None
    # Where analyzers may persist state (baselines), see statedir.py; or None.
    state_dir: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    stack: StackView | None = None


@dataclass
class Components:
    analyzers: list[Analyzer] = field(default_factory=list)
    sinks: list[AlertSink] = field(default_factory=list)


def load_components(
    context: PipelineContext, modules: tuple[str, ...] = COMPONENT_MODULES
) -> Components:
    """Ask every plug-in module that exists for its analyzers and sinks."""
    found = Components()
    for name in modules:
        try:
            module = importlib.import_module(name)
            factory = getattr(module, "detector_components", None)
            contributed: Components | None = factory(context) if factory is not None else None
        except ModuleNotFoundError as exc:
            if exc.name != name:
                log.exception("plug-in %s cannot be loaded; running without it", name)
            continue  # not written yet, or not installed: fine
        except Exception:
            # A broken plug-in must not keep the rules from running.
            log.exception("plug-in %s failed to start; running without it", name)
            continue
        if contributed is None:
            continue
        found.analyzers.extend(contributed.analyzers)
        found.sinks.extend(contributed.sinks)
        log.info(
            "%s: %d analyzers, %d sinks",
            name,
            len(contributed.analyzers),
            len(contributed.sinks),
        )
    return found


@dataclass
class DetectorPipeline:
    """Runs analyzers in order (the rule engine first) and hands every alert to every sink.

    An analyzer that raises is logged and skipped for that event: one bad plug-in must not
    blind the detector. Errors counted in `analyzer_errors`.
    """

    analyzers: list[Analyzer] = field(default_factory=list)
    sinks: list[AlertSink] = field(default_factory=list)
    analyzer_errors: int = 0
    alerts_emitted: int = 0

    def process(self, event: DetectEvent, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for analyzer in self.analyzers:
            try:
                alerts.extend(analyzer.observe(event, now))
            except Exception:
                self._failed(analyzer, "observe")
        return self._finish(alerts, now)

    def tick(self, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for analyzer in self.analyzers:
            try:
                alerts.extend(analyzer.tick(now))
            except Exception:
                self._failed(analyzer, "tick")
        return self._finish(alerts, now)

    def emit(self, alerts: list[Alert]) -> None:
        """Hand alerts raised outside the analyzers (reload failures) to the sinks."""
        for alert in alerts:
            self.alerts_emitted += 1
            for sink in self.sinks:
                sink.submit(alert)

    def _finish(self, alerts: list[Alert], now: float) -> list[Alert]:
        if not alerts:
            return alerts
        derived: list[Alert] = []
        for alert in alerts:
            for analyzer in self.analyzers:
                try:
                    derived.extend(analyzer.on_alert(alert, now))
                except Exception:
                    self._failed(analyzer, "on_alert")
        alerts.extend(derived)
        self.emit(alerts)
        return alerts

    def _failed(self, analyzer: Analyzer, what: str) -> None:
        self.analyzer_errors += 1
        log.exception("analyzer %s failed in %s; skipped for this event", analyzer.name, what)
