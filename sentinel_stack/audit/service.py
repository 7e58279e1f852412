"""The audit writer as a launcher task: hub and supervisor events in, records on disk.

Nothing upstream ever waits for the audit log. Intake tasks move events from the hub and
the supervisor bus into one bounded queue with ``send_nowait``; what does not fit is
counted, and the count is itself written as a ``gap`` record (what was lost, how many,
between when). One writer task drains the queue in batches and does all file work in a
worker thread, so a slow disk stalls neither the hub nor the control API.

The event hub may also drop lines for us, before the intake sees them, when our staging
channel is full (only if the launcher's event loop is starved: the intake does no I/O). The
hub hands us each such line (`EventHub.subscribe`'s ``on_drop``); those that were audit
material count in the same ``gap`` records, by record type.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from sentinel_stack.audit.keys import AuditKeyError
from sentinel_stack.audit.layout import LogBusy
from sentinel_stack.audit.mapping import (
    HUB_KINDS,
    AuditEntry,
    StateAuditor,
    UnreadableEvent,
    entry_from_hub,
)
from sentinel_stack.audit.settings import AuditSettings
from sentinel_stack.audit.writer import AuditLog, AuditSetupError, LogStatus
from sentinel_stack.events.hub import EventHub
from sentinel_stack.supervisor.events import EventBus, StateChange

BATCH = 512
# Staging between the hub/bus and our own queue: the intake tasks empty it at once (no
# I/O), so it only fills if the event loop stalls; our queue is the one that may overflow.
STAGING = 10_000
Notice = Callable[[str, str], None]


class AuditService:
    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings
        self.log: AuditLog | None = None
        self.error = ""
        self.dropped = 0
        self._gap: Counter[str] = Counter()
        self._gap_first: float | None = None
        self._gap_last: float | None = None
        self._send, self._receive = trio.open_memory_channel[AuditEntry](settings.queue)
        self._intake: trio.CancelScope | None = None
        self._done = trio.Event()
        self._head: LogStatus | None = None  # refreshed after each batch, read by `status`

    # ---- intake (never blocks) --------------------------------------------------------

    def offer(self, entry: AuditEntry) -> None:
        try:
            self._send.send_nowait(entry)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self._count_drop(entry.type)

    def record(self, type: str, data: dict[str, Any]) -> None:
        """Queue a record the launcher itself produces (a config reload, …)."""
        self.offer(AuditEntry(type, data))

    def config_reloaded(self, path: Path, changes: list[str] | None, error: str = "") -> None:
        """A reload: what changed (or why it was refused) and the file's SHA-256."""
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            digest = f"unreadable: {exc.strerror}"
        data: dict[str, Any] = {"config": str(path), "sha256": digest, "ok": not error}
        if error:
            data["error"] = error
        else:
            data["changes"] = changes or []
        self.record("config_reload", data)

    def _count_drop(self, kind: str, count: int = 1) -> None:
        now = time.time()
        self.dropped += count
        self._gap[kind] += count
        self._gap_first = self._gap_first or now
        self._gap_last = now

    def _take_gap(self) -> dict[str, Any] | None:
        if not self._gap:
            return None
        gap = {
            "dropped": sum(self._gap.values()),
            "by_type": dict(self._gap),
            "first": self._gap_first,
            "last": self._gap_last,
            "reason": (
                "events not recorded: the audit queue or the hub's queue for the audit log "
                "was full, or a line was unreadable"
            ),
        }
        self._gap.clear()
        self._gap_first = self._gap_last = None
        return gap

    # ---- tasks ------------------------------------------------------------------------

    async def run(
        self,
        hub: EventHub,
        bus: EventBus,
        notice: Notice,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Open the log, then audit until `close`. A log that cannot be opened leaves the
        stack running, with the reason in `status` and on the console."""
        try:
            self.log = await trio.to_thread.run_sync(
                AuditLog.open, self.settings.log, time.time(), os.getpid()
            )
        except (AuditSetupError, AuditKeyError, LogBusy, OSError) as exc:
            self.error = str(exc)
            notice(f"audit log disabled: {exc}", "error")
            self._done.set()
            task_status.started()
            return
        self._head = self.log.status()
        for message in self.log.notices:
            notice(message, "error" if "DAMAGED" in message else "warn")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write_loop, self.log, notice)
            async with trio.open_nursery() as intake:
                self._intake = intake.cancel_scope
                await intake.start(self._pump_hub, hub)
                await intake.start(self._pump_bus, bus)
                task_status.started()
            self._send.close()  # the writer drains what is queued, then seals the log

    async def close(self) -> None:
        """Stop intake, write what is queued, sign the final head. Safe to call twice."""
        if self._intake is not None:
            self._intake.cancel()
        with trio.CancelScope(shield=True):
            await self._done.wait()

    async def _pump_hub(
        self, hub: EventHub, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with hub.subscribe(HUB_KINDS, buffer=STAGING, on_drop=self._dropped_at_hub) as lines:
            task_status.started()
            try:
                async for line in lines:
                    self._offer_line(line)
            finally:  # closing: what the hub already handed over is still audited
                while True:
                    try:
                        self._offer_line(lines.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                        break

    def _offer_line(self, line: bytes) -> None:
        entry = self._entry(line)
        if entry is not None:
            self.offer(entry)

    def _dropped_at_hub(self, line: bytes) -> None:
        """A line the hub could not queue for us: a gap only if it was audit material (an
        allowed request's access record is not)."""
        entry = self._entry(line)
        if entry is not None:
            self._count_drop(entry.type)

    def _entry(self, line: bytes) -> AuditEntry | None:
        try:
            return entry_from_hub(line)
        except UnreadableEvent:
            self._count_drop("unreadable_event")
            return None

    async def _pump_bus(
        self, bus: EventBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        auditor = StateAuditor()
        async with bus.subscribe(STAGING) as subscription:
            task_status.started()
            seen = 0

            def take(event: object) -> None:
                nonlocal seen
                if isinstance(event, StateChange):
                    entry = auditor.entry(event)
                    if entry is not None:
                        self.offer(entry)
                if subscription.dropped > seen:  # the bus itself dropped events for us
                    self._count_drop("supervisor_event", subscription.dropped - seen)
                    seen = subscription.dropped

            try:
                async for event in subscription:
                    take(event)
            finally:
                while True:
                    try:
                        take(subscription.receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                        break

    async def _write_loop(self, log: AuditLog, notice: Notice) -> None:
        try:
            while True:
                batch: list[AuditEntry] = []
                with trio.move_on_after(log.chain.next_due(time.time())):
                    try:
                        batch.append(await self._receive.receive())
                    except trio.EndOfChannel:
                        break
                while len(batch) < BATCH:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._write(log, batch, notice)
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await self._write(log, _drain(self._receive), notice)
                    await trio.to_thread.run_sync(log.close, time.time())
                except OSError as exc:
                    notice(f"sealing the audit log failed: {exc}", "error")
                finally:
                    self._done.set()

    async def _write(self, log: AuditLog, batch: list[AuditEntry], notice: Notice) -> None:
        if self.error:  # the disk failed earlier: count, never block
            for entry in batch:
                self._count_drop(entry.type)
            return
        gap = self._take_gap()
        try:
            await trio.to_thread.run_sync(_write_batch, log, batch, gap)
            self._head = log.status()
        except OSError as exc:
            self.error = f"writing the audit log failed: {exc}"
            notice(self.error + "; audit records are being dropped", "error")

    def status(self) -> dict[str, Any]:
        """The `audit` section of `status --json`."""
        out: dict[str, Any] = {
            "dir": str(self.settings.log.directory),
            "key_file": str(self.settings.log.key_file),
            "error": self.error or None,
            "dropped": self.dropped,
            "queued": self._send.statistics().current_buffer_used,
        }
        head = self._head
        if head is not None:
            out["path"] = head.file
            out["head"] = {"seq": head.seq, "hash": head.hash}
            out["last_checkpoint"] = {
                "seq": head.last_checkpoint_seq,
                "time": head.last_checkpoint_time,
            }
            out["written"] = head.written
            out["key_id"] = head.key_id
        return out


def _drain(receive: trio.MemoryReceiveChannel[AuditEntry]) -> list[AuditEntry]:
    rest = []
    while True:
        try:
            rest.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return rest


def _write_batch(log: AuditLog, batch: list[AuditEntry], gap: dict[str, Any] | None) -> None:
    now = time.time()
    for entry in batch:
        log.append(entry.type, entry.data, now)
    if gap is not None:
        log.append("gap", gap, now)
    log.tick(now)
    log.flush()
