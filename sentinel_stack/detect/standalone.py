"""The detector without a launcher: it serves the event hub itself.

    proxy, probe, agents --JSON lines--> events.sock (EventHub, served here) --> Detector
                                                              --> sinks: file, webhooks, log

Under `sentinel-stack up` the launcher owns `events.sock` and the detector subscribes
through `control.sock`. The exported tiers (systemd, Compose, Kubernetes) have no launcher,
so the detector takes its place on the producers' side: the same `EventHub` (the same
JSON-lines protocol and limits; producers never wait, a full queue drops and counts) with
the detector as its one subscriber. What the launcher added is missing, and the detector
says so once: no supervisor `state` events (crash_loop cannot fire) and no `status` (child
pids are learnt from execs of the configured commands and from systemd unit cgroups).

Which mode, in order: an inherited socket-activated listener named ``events``
(LISTEN_FDS/LISTEN_FDNAMES) or ``--serve-events PATH`` → standalone; a launcher answering
on its control socket → subscribe as before; else standalone at ``--events-socket`` /
``$SENTINEL_EVENTS_SOCKET``, unless something already listens there.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import replace
from pathlib import Path

import trio

from sentinel_stack.child.sdnotify import notify
from sentinel_stack.detect.service import (
    Detector,
    DetectorSettings,
    reload_on_hup,
    run_detector,
    run_ticker,
)
from sentinel_stack.events.hub import EventHub

__all__ = ["EVENTS_FD_NAME", "run_detector_auto", "run_standalone"]

log = logging.getLogger("sentinel_stack.detect")

EVENTS_FD_NAME = "events"  # FileDescriptorName= of the socket unit `export systemd` writes
_PROBE_TIMEOUT = 2.0


async def run_detector_auto(
    settings: DetectorSettings,
    listener: socket.socket | None = None,
    *,
    task_status: trio.TaskStatus[Detector] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run in whichever mode fits (the module docstring's order) until cancelled."""
    if listener is None and settings.serve_events is None:
        path = await _launcherless_hub_path(settings)
        if path is None:
            await run_detector(settings, task_status=task_status)
            return
        settings = replace(settings, serve_events=path)
    await run_standalone(settings, listener, task_status=task_status)


async def run_standalone(
    settings: DetectorSettings,
    listener: socket.socket | None = None,
    *,
    task_status: trio.TaskStatus[Detector] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the hub (on ``listener``, else at ``settings.serve_events``) and detect on
    every line; `started` (and READY=1) once producers can connect."""
    if listener is None and settings.serve_events is None:
        raise ValueError("standalone detector: give --serve-events PATH or an `events` socket")
    detector = Detector(settings, None, standalone=True)
    if listener is not None:
        path = Path(str(listener.getsockname()))  # for the log: the hub does not bind it
    else:
        assert settings.serve_events is not None
        path = settings.serve_events
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    hub = EventHub(path)
    detector.served = hub.stats
    async with trio.open_nursery() as nursery:
        for sink in detector.pipeline.sinks:
            nursery.start_soon(sink.run)
        await nursery.start(_feed, detector, hub)  # subscribed before the first producer
        if listener is not None:
            await nursery.start(hub.serve_socket, trio.socket.from_stdlib_socket(listener))
        else:
            await nursery.start(hub.serve)
        nursery.start_soon(run_ticker, detector)
        await nursery.start(reload_on_hup, detector)
        notify("READY=1", detector.status_text())
        log.info(
            "detector ready (standalone): %d rules from %s; serving the event hub at %s%s",
            len(detector.engine.ruleset.enabled),
            settings.rules_dir,
            path,
            " (socket-activated)" if listener is not None else "",
        )
        _say_what_is_missing(detector)
        task_status.started(detector)


async def _feed(
    detector: Detector,
    hub: EventHub,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with hub.subscribe() as lines:
        task_status.started()
        async for first in lines:
            now = time.time()  # one clock read per wake-up, not per line
            detector.handle_hub_line(first, now)
            while True:
                try:
                    line = lines.receive_nowait()
                except trio.WouldBlock:
                    break
                detector.handle_hub_line(line, now)


def _say_what_is_missing(detector: Detector) -> None:
    inactive = detector.supervisor_only_rules()
    if inactive:
        log.warning(
            "standalone: no supervisor, so no child state events; these rules cannot fire: %s "
            "(watch the service manager's restarts instead: `systemctl --failed`, "
            "`kubectl get pods`, `docker compose ps`)",
            ", ".join(inactive),
        )
    view = detector.view
    log.info(
        "standalone: stack children are recognised by systemd unit cgroups "
        "(sentinel-%s-<child>.service) and by execs of their configured commands (%d known); "
        "a child started before the probe is known only by its cgroup",
        view.stack_name or "<stack>",
        len(view.commands) + len(view.modules),
    )


async def _launcherless_hub_path(settings: DetectorSettings) -> Path | None:
    """None when a launcher answers; else where to serve the hub. ValueError when the
    detector can do neither (the message says which flag or variable is missing)."""
    control = settings.control_socket
    if control is not None and await _answers(control):
        return None
    why = f"nothing answers at {control}" if control else "SENTINEL_RUN_DIR is not set"
    path = settings.events_socket
    if path is None:
        raise ValueError(
            f"no launcher ({why}) and no event hub path: run standalone with "
            "--serve-events PATH (or set SENTINEL_EVENTS_SOCKET), or under `sentinel-stack up`"
        )
    if await _answers(path):
        raise ValueError(
            f"no launcher ({why}), yet something already serves {path}: stop that event hub, "
            "or give this detector another path with --serve-events"
        )
    log.warning("no launcher (%s): serving the event hub at %s myself (standalone)", why, path)
    return path


async def _answers(path: Path) -> bool:
    """Whether a server accepts connections at ``path`` (a stale socket file does not)."""
    try:
        with trio.fail_after(_PROBE_TIMEOUT):
            stream = await trio.open_unix_socket(str(path))
    except OSError:
        return False
    except trio.TooSlowError:
        return True  # listening, just slow: not ours to take over
    await stream.aclose()
    return True
