"""The detector child: hub events in (via the control socket), alerts out (to the hub).

    control.sock  --subscribe events,state-->  Detector.handle_line --> pipeline --> sinks
                                                                          (hub: events.sock)

`Detector` holds one run's state and does no I/O of its own (time is passed in); the
Trio functions below connect it: the subscription reader, a one-second ticker (dedup
windows, stateful rules, analyzers' timers), SIGHUP reload, and the sinks' tasks.
Without a launcher the detector serves the hub itself: `standalone.py`.
Reload keeps the last good rules when a file is broken and says so with an alert
(`rules_reload_failed`); the detector never stops detecting because of a typo.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio

from sentinel_stack.child.sdnotify import notify, watchdog_interval
from sentinel_stack.config.loader import ConfigError, load_config
from sentinel_stack.config.schema import AlertFileConfig, StackConfig
from sentinel_stack.detect.alert import ALERT_ENCODER, Alert
from sentinel_stack.detect.engine import RuleEngine
from sentinel_stack.detect.events import HubAlert, decode_event, decode_stream_line
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.pipeline import DetectorPipeline, PipelineContext, load_components
from sentinel_stack.detect.rules_loader import RulesError, load_rules
from sentinel_stack.detect.sinks import JsonLinesSink
from sentinel_stack.detect.wiring import apply_status, builtin_lists, view_from_config
from sentinel_stack.events.hub import HubStats
from sentinel_stack.probe.events import ExecEvent, ExitEvent
from sentinel_stack.probe.hub import HubPublisher
from sentinel_stack.statedir import own_state_dir

__all__ = [
    "Detector",
    "DetectorSettings",
    "HubSink",
    "LogSink",
    "reload_on_hup",
    "run_detector",
    "run_ticker",
]

log = logging.getLogger("sentinel_stack.detect")

SUBSCRIBE = b'{"op":"subscribe","id":1,"topics":["events","state"]}\n'
STATUS = b'{"op":"status","id":1}\n'


@dataclass(frozen=True)
class DetectorSettings:
    rules_dir: Path
    run_dir: Path | None = None
    control_socket: Path | None = None
    events_socket: Path | None = None
    config_path: Path | None = None
    launcher_pid: int | None = None
    source: str = "detector"
    tick_interval: float = 1.0
    serve_events: Path | None = None  # standalone: serve the event hub here
    alert_file: Path | None = None  # overrides `[detector.alert_file] path`
    state_dir: Path | None = None  # baseline, alert file (`up` sets it); else <run-dir>/detector

    @classmethod
    def from_environment(cls, rules_dir: Path, environ: Mapping[str, str]) -> DetectorSettings:
        run_dir = Path(environ["SENTINEL_RUN_DIR"]) if environ.get("SENTINEL_RUN_DIR") else None
        events = environ.get("SENTINEL_EVENTS_SOCKET")
        config = environ.get("SENTINEL_CONFIG")
        pid = environ.get("SENTINEL_STACK_PID", "")
        return cls(
            rules_dir=rules_dir,
            run_dir=run_dir,
            control_socket=run_dir / "control.sock" if run_dir else None,
            events_socket=Path(events) if events else None,
            config_path=Path(config) if config else None,
            launcher_pid=int(pid) if pid.isdigit() else None,
            source=environ.get("SENTINEL_CHILD_NAME") or "detector",
            state_dir=own_state_dir(environ),
        )


class HubSink:
    """Alerts onto the event hub through the probe's non-blocking, reconnecting writer."""

    name = "hub"

    def __init__(self, path: Path) -> None:
        self.publisher = HubPublisher(path)

    def submit(self, alert: Alert) -> None:
        self.publisher.offer(ALERT_ENCODER.encode(alert) + b"\n")

    async def run(self) -> None:
        await self.publisher.run()


class LogSink:
    """Alerts into the detector's log: with no launcher (and so no TUI, no `alerts` verb)
    the journal or the container log is where an operator sees them first."""

    name = "log"

    def submit(self, alert: Alert) -> None:
        log.warning("ALERT %s [%s] %s", alert.rule, alert.severity, alert.summary)

    async def run(self) -> None:
        await trio.sleep_forever()


def read_config(path: Path | None) -> StackConfig | None:
    if path is None:
        return None
    try:
        return load_config(path).config
    except ConfigError as exc:
        log.warning("cannot read the stack config (%s); running without it", exc)
        return None


class Detector:
    """One detector run: the stack view, the rules engine, the pipeline."""

    def __init__(
        self,
        settings: DetectorSettings,
        status: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        standalone: bool = False,
    ) -> None:
        self.settings = settings
        self.standalone = standalone
        self.served: HubStats | None = None  # standalone: the stats of the hub it serves
        self.config = read_config(settings.config_path)
        self.view = view_from_config(self.config, settings.launcher_pid)
        if status:
            apply_status(self.view, status)
        ruleset = load_rules(settings.rules_dir, builtin_lists(self.view))  # RulesError: fatal
        detector = self.config.detector if self.config else None
        folder = AlertFolder(
            window=detector.dedup_window if detector else 60.0,
            per_minute=detector.rate_limit if detector else 60,
            burst=detector.rate_limit if detector else 60,
        )
        self.engine = RuleEngine(ruleset, self.view, folder=folder, source=settings.source)
        context = PipelineContext(
            config=self.config,
            config_path=settings.config_path,
            run_dir=settings.run_dir,
            rules_dir=settings.rules_dir,
            state_dir=settings.state_dir
            or (settings.run_dir / "detector" if settings.run_dir else None),
            environ=dict(os.environ if environ is None else environ),
            stack=self.view,
        )
        components = load_components(context)
        sinks = components.sinks
        if settings.alert_file is not None:
            sinks = [s for s in sinks if not isinstance(s, JsonLinesSink)]
            file = detector.alert_file if detector else AlertFileConfig()
            sinks.append(
                JsonLinesSink(
                    settings.alert_file,
                    max_bytes=file.max_bytes,
                    backups=file.backups,
                    min_severity=file.min_severity,
                )
            )
        # Standalone, the detector is the hub: its alerts go to its sinks and its log.
        self.hub = None
        if standalone:
            sinks = [LogSink(), *sinks]
        elif settings.events_socket:
            self.hub = HubSink(settings.events_socket)
            sinks = [self.hub, *sinks]
        self.pipeline = DetectorPipeline([self.engine, *components.analyzers], sinks)
        self.skipped = 0

    def handle_line(self, line: bytes, now: float) -> list[Alert]:
        """One line of the subscription stream."""
        event = decode_stream_line(line)
        if event is None:
            self.skipped += 1
            return []
        if isinstance(event, HubAlert) and event.source == self.settings.source:
            return []  # our own alert coming back from the hub
        return self.pipeline.process(event, now)

    def handle_hub_line(self, line: bytes, now: float) -> list[Alert]:
        """One line a producer wrote to the hub this detector serves (standalone)."""
        event = decode_event(line)
        if event is None:
            self.skipped += 1
            return []
        if isinstance(event, ExecEvent):
            # No supervisor tells us the children's pids: recognise their commands.
            self.view.learn_exec(event.argv, event.pid)
        elif isinstance(event, ExitEvent) and event.pid in self.view.pids:
            self.view.child_gone(self.view.pids[event.pid], event.pid)
        return self.pipeline.process(event, now)

    def supervisor_only_rules(self) -> list[str]:
        """Enabled rules that only supervisor `state` events can fire (crash_loop)."""
        return sorted(
            rule
            for rule, kinds in self.engine.reach.items()
            if kinds and all(kind == "state" for kind in kinds)
        )

    def tick(self, now: float) -> list[Alert]:
        return self.pipeline.tick(now)

    def reload(self, now: float) -> Alert | None:
        """Re-read the config and the rules; on a broken file keep the last good rules."""
        config = read_config(self.settings.config_path) or self.config
        fresh = view_from_config(config, self.view.launcher_pid)
        for name in (
            "stack_name",
            "kinds",
            "upstream_process",
            "upstreams",
            "child_egress",
            "egress",
            "commands",
            "modules",
        ):
            setattr(self.view, name, getattr(fresh, name))
        self.config = config
        try:
            ruleset = load_rules(self.settings.rules_dir, builtin_lists(self.view))
        except RulesError as exc:
            log.error(  # noqa: TRY400 -- the problems, not a traceback
                "rule reload failed; keeping the %d rules loaded before:\n%s",
                len(self.engine.ruleset.rules),
                exc,
            )
            first = exc.issues[0] if exc.issues else None
            alert = Alert(
                time=now,
                source=self.settings.source,
                rule="rules_reload_failed",
                severity="high",
                summary=f"Rule reload failed ({len(exc.issues)} problems); still running the "
                f"last good rules. First: {first}",
                tags=["detector", "rules"],
                fields={
                    "problems": len(exc.issues),
                    "first": str(first) if first else None,
                    "rules_dir": str(self.settings.rules_dir),
                },
            )
            self.pipeline.emit([alert])
            return alert
        self.engine.load(ruleset)
        log.info("reloaded %d rules from %s", len(ruleset.rules), self.settings.rules_dir)
        return None

    def status_text(self) -> str:
        engine = self.engine
        text = (
            f"STATUS={len(engine.ruleset.enabled)} rules; {engine.events} events, "
            f"{self.pipeline.alerts_emitted} alerts"
        )
        if self.served is not None:
            hub = self.served
            text += f"; standalone hub: {hub.received} lines, {hub.dropped} dropped"
            if inactive := self.supervisor_only_rules():
                text += f"; inactive (no supervisor): {', '.join(inactive)}"
        return text


async def fetch_status(control: Path) -> dict[str, Any] | None:
    """The launcher's `status` answer, or None when there is no launcher to ask."""
    try:
        with trio.fail_after(5):
            stream = await trio.open_unix_socket(str(control))
            async with stream:
                await stream.send_all(STATUS)
                buffer = b""
                while b"\n" not in buffer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return None
                    buffer += chunk
    except (OSError, trio.TooSlowError) as exc:
        log.warning("no status from %s (%s)", control, exc)
        return None
    reply = msgspec.json.decode(buffer.split(b"\n", 1)[0])
    result = reply.get("result") if isinstance(reply, dict) else None
    return result if isinstance(result, dict) else None


async def run_detector(
    settings: DetectorSettings, *, task_status: trio.TaskStatus[Detector] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run until cancelled; `started` (and READY=1) once subscribed to the hub."""
    if settings.control_socket is None:
        raise ValueError("no control socket: run under `sentinel-stack up` (SENTINEL_RUN_DIR)")
    status = await fetch_status(settings.control_socket)
    detector = Detector(settings, status)
    async with trio.open_nursery() as nursery:
        for sink in detector.pipeline.sinks:
            nursery.start_soon(sink.run)
        await nursery.start(_subscription, detector, settings.control_socket)
        nursery.start_soon(run_ticker, detector)
        await nursery.start(reload_on_hup, detector)
        notify("READY=1", detector.status_text())
        log.info(
            "detector ready: %d rules from %s",
            len(detector.engine.ruleset.enabled),
            settings.rules_dir,
        )
        task_status.started(detector)


async def _subscription(
    detector: Detector,
    control: Path,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Read the event stream; reconnect if the launcher drops it (events meanwhile are lost)."""
    delay = 0.1
    started = False
    while True:
        try:
            stream = await trio.open_unix_socket(str(control))
        except OSError as exc:
            if not started:
                raise ValueError(f"cannot subscribe at {control}: {exc}") from None
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        async with stream:
            await stream.send_all(SUBSCRIBE)
            if not started:
                started = True
                task_status.started()
            connected = trio.current_time()
            try:
                await _read(detector, stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.warning("event subscription lost (%s); reconnecting", exc)
        if trio.current_time() - connected > 10:
            delay = 0.1
        await trio.sleep(delay)  # a launcher that keeps hanging up must not spin us
        delay = min(delay * 2, 5.0)


async def _read(detector: Detector, stream: trio.SocketStream) -> None:
    buffer = b""
    while True:
        chunk = await stream.receive_some(1 << 16)
        if not chunk:
            log.warning("the launcher closed the event subscription; reconnecting")
            return
        *lines, buffer = (buffer + chunk).split(b"\n")
        now = time.time()
        for line in lines:
            if line:
                detector.handle_line(line, now)


async def run_ticker(detector: Detector) -> None:
    interval = detector.settings.tick_interval
    watchdog = watchdog_interval()
    last_status = 0.0
    while True:
        await trio.sleep(min(interval, watchdog / 2) if watchdog else interval)
        now = time.time()
        detector.tick(now)
        fields = ["WATCHDOG=1"] if watchdog else []
        if now - last_status >= 5:
            fields.append(detector.status_text())
            last_status = now
        if fields:
            notify(*fields)


async def reload_on_hup(
    detector: Detector, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()  # before READY=1: a SIGHUP must never find the default action
        async for _ in signals:
            notify("RELOADING=1")
            detector.reload(time.time())
            notify("READY=1", detector.status_text())
