"""Events from an agent to the stack's event hub: JSON lines on ``$SENTINEL_EVENTS_SOCKET``.

A decision must never wait for telemetry: `EventHubWriter.emit` queues without blocking, and
what does not fit, or is emitted while no hub is configured, is dropped and counted. A
background task sends the queue in batches and reconnects with backoff when the hub goes.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import msgspec
import trio

__all__ = ["EVENTS_SOCKET_ENV", "EventHubWriter"]

EVENTS_SOCKET_ENV = "SENTINEL_EVENTS_SOCKET"
_BATCH = 256
_BACKOFF_MAX = 5.0

log = logging.getLogger("sentinel_agents.eventhub")


class EventHubWriter:
    """Queues events (``kind``, ``time``, ``source`` and any fields) for the event hub."""

    def __init__(self, path: str | None, source: str, *, capacity: int = 4096) -> None:
        self.path = path
        self.source = source
        self.sent = 0
        self.dropped = 0
        self.connected = False
        self._send, self._receive = trio.open_memory_channel[bytes](capacity)
        self._encoder = msgspec.json.Encoder()

    @classmethod
    def from_environment(cls, source: str) -> EventHubWriter:
        """A writer to ``$SENTINEL_EVENTS_SOCKET``; one that only counts drops without it."""
        return cls(os.environ.get(EVENTS_SOCKET_ENV) or None, source)

    def emit(self, kind: str, fields: dict[str, Any]) -> bool:
        """Queue one event; False when it was dropped (no hub, or the queue is full)."""
        if self.path is None:
            self.dropped += 1
            return False
        line = self._encoder.encode(
            {"kind": kind, "time": time.time(), "source": self.source, **fields}
        )
        try:
            self._send.send_nowait(line + b"\n")
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ship events until cancelled, reconnecting forever."""
        task_status.started()
        if self.path is None:
            return
        backoff = 0.1
        while True:
            try:
                stream = await trio.open_unix_socket(self.path)
            except OSError:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = 0.1
            self.connected = True
            try:
                async with stream:
                    await self._pump(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                log.debug("event hub connection lost; reconnecting")
            finally:
                self.connected = False

    async def _pump(self, stream: trio.SocketStream) -> None:
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                await stream.send_all(b"".join(batch))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.dropped += len(batch)
                raise
            self.sent += len(batch)
