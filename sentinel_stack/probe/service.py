"""The probe process: choose a backend, enrich its events, publish them, report health.

    backend (bpftrace | procfs) ──submit──► EventPipeline (enrich, encode) ──► publisher(s)
                                                                   └──────► recorder file
    health timer ──► probe.health / alert events, sd_notify STATUS=

Readiness (`READY=1`) is sent once the backend is ready: for bpftrace, once every program is
attached. A failure of eBPF at start falls back to procfs when the backend is "auto", with
the reason in the status and the logs; after start a backend failure ends the probe with an
error (the supervisor restarts it) rather than quietly changing what is being watched.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import BinaryIO, Protocol

import trio

from sentinel_stack.child.sdnotify import notify
from sentinel_stack.probe import events as ev
from sentinel_stack.probe.backend import (
    Backend,
    BackendFailed,
    BackendStatus,
    ScopeDrift,
    ebpf_unavailable_reason,
)
from sentinel_stack.probe.bpftrace_backend import BpftraceBackend
from sentinel_stack.probe.config import ProbeConfig, expand_patterns, home_directories
from sentinel_stack.probe.enrich import CgroupIndex, Enricher
from sentinel_stack.probe.fallback import ProcfsBackend, ProcfsPoller
from sentinel_stack.probe.health import HealthMonitor, status_line
from sentinel_stack.probe.hub import HubPublisher, StdoutPublisher
from sentinel_stack.probe.lineage import LineageTable
from sentinel_stack.probe.procfs import snapshot_processes
from sentinel_stack.probe.records import Clocks
from sentinel_stack.probe.scope import ScopeFilter, cgroup2_mount, resolve_scope

__all__ = ["EventPipeline", "current_clocks", "run_probe"]

log = logging.getLogger("sentinel_stack.probe")

MAX_SCOPE_RESTARTS = 3


class Publisher(Protocol):
    connected: bool
    dropped: int

    def offer(self, lines: bytes, count: int = 1) -> bool: ...

    async def run(self) -> None: ...


def current_clocks() -> Clocks:
    mono_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    boot_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return Clocks(
        realtime_minus_monotonic=time.time() - mono_ns / 1e9,
        boottime_minus_monotonic_ns=boot_ns - mono_ns,
        ticks_per_second=os.sysconf("SC_CLK_TCK"),
    )


class EventPipeline:
    """The sink every backend submits to: enrich, stamp, encode, hand to the publisher."""

    def __init__(
        self,
        enricher: Enricher,
        publisher: Publisher,
        recorder: BinaryIO | None = None,
    ) -> None:
        self.enricher = enricher
        self.publisher = publisher
        self.recorder = recorder
        self.backend_name = "bpftrace"
        self.total = 0
        self._encode = ev.EVENT_ENCODER.encode

    def submit(self, events: Sequence[ev.KernelEvent]) -> None:
        ordered = sorted(events, key=_by_time)  # per-CPU buffers interleave slightly
        apply = self.enricher.apply
        encode = self._encode
        backend = self.backend_name
        lines = []
        for event in ordered:
            apply(event)
            event.backend = backend
            lines.append(encode(event))
        lines.append(b"")
        data = b"\n".join(lines)
        self.publisher.offer(data, len(ordered))
        if self.recorder is not None:
            self.recorder.write(data)
        self.total += len(ordered)

    def publish(self, message: ev.ProbeHealth | ev.ProbeAlert) -> None:
        line = self._encode(message) + b"\n"
        self.publisher.offer(line, 1)
        if self.recorder is not None:
            self.recorder.write(line)


def _by_time(event: ev.KernelEvent) -> float:
    return event.time


def _build_bpftrace(
    config: ProbeConfig, scope: ScopeFilter, homes: list[str], clocks: Clocks
) -> BpftraceBackend:
    return BpftraceBackend(
        config,
        scope,
        expand_patterns(config.sensitive, homes),
        expand_patterns(config.watched, homes),
        clocks,
    )


async def _start_backend(
    nursery: trio.Nursery, config: ProbeConfig, pipeline: EventPipeline, clocks: Clocks
) -> Backend:
    """Start the configured backend, falling back to procfs under "auto"."""
    homes = await trio.to_thread.run_sync(home_directories)
    reason = None
    if config.backend != "procfs":
        reason = ebpf_unavailable_reason(config.bpftrace)
        if reason is None:
            for attempt in range(MAX_SCOPE_RESTARTS + 1):
                scope = await trio.to_thread.run_sync(resolve_scope, config)
                backend = _build_bpftrace(config, scope, homes, clocks)
                groups = len(backend.groups)
                log.info("scope: %s; starting %d bpftrace process(es)", scope.describe(), groups)
                try:
                    await nursery.start(backend.run, pipeline)
                except ScopeDrift as drift:
                    if attempt == MAX_SCOPE_RESTARTS:
                        raise BackendFailed(
                            f"scope kept changing during start-up: {drift}"
                        ) from None
                    log.info("%s; restarting bpftrace with a fresh scope", drift)
                    continue
                except BackendFailed as exc:
                    reason = str(exc)
                    if config.backend == "bpftrace":
                        raise
                    break
                pipeline.backend_name = "bpftrace"
                return backend
        elif config.backend == "bpftrace":
            raise BackendFailed(f"eBPF unavailable: {reason}")
    scope = await trio.to_thread.run_sync(resolve_scope, config)
    poller = ProcfsPoller(
        scope,
        expand_patterns(config.sensitive, homes),
        expand_patterns(config.watched, homes),
        config.source,
    )
    fallback = ProcfsBackend(
        poller, reason or "procfs backend requested (--backend procfs)", config.poll_interval
    )
    pipeline.backend_name = "procfs"
    await nursery.start(fallback.run, pipeline)
    return fallback


async def _health_loop(
    config: ProbeConfig,
    backend: BackendStatus,
    pipeline: EventPipeline,
    publisher: Publisher,
    lineage: LineageTable,
    scope_description: str,
) -> None:
    monitor = HealthMonitor(config.source, scope_description)
    while True:
        now = time.time()
        health, alert = monitor.sample(
            now, backend, pipeline.total, publisher.connected, publisher.dropped
        )
        pipeline.publish(health)
        if alert is not None:
            log.warning("%s", alert.summary)
            pipeline.publish(alert)
        notify(f"STATUS={status_line(health)}")
        lineage.expire(now)
        await trio.sleep(config.health_interval)


async def run_probe(
    config: ProbeConfig,
    *,
    recorder: BinaryIO | None = None,
    task_status: trio.TaskStatus[BackendStatus] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the probe until cancelled. Started (`nursery.start`) once the backend is ready."""
    clocks = current_clocks()
    publisher: Publisher = (
        HubPublisher(config.events_socket, batch_max=config.batch_max)
        if config.events_socket is not None
        else StdoutPublisher()
    )
    lineage = LineageTable()
    enricher = Enricher(lineage, CgroupIndex(cgroup2_mount()), time.time)
    pipeline = EventPipeline(enricher, publisher, recorder)
    notify("STATUS=starting")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.run)
        nursery.start_soon(_seed_lineage, lineage)
        backend = await _start_backend(nursery, config, pipeline, clocks)
        status = backend.status
        if status.degraded:
            log.warning("probe ready in DEGRADED mode (%s): %s", status.name, status.reason)
        else:
            log.info("probe ready: %d probes attached", status.probes_attached)
        description = config.scope
        nursery.start_soon(_health_loop, config, status, pipeline, publisher, lineage, description)
        notify("READY=1", f"STATUS={status.name} ready")
        task_status.started(status)


async def _seed_lineage(lineage: LineageTable) -> None:
    snapshots = await trio.to_thread.run_sync(snapshot_processes)
    lineage.seed(snapshots)
    log.debug("lineage seeded with %d processes from /proc", len(snapshots))
