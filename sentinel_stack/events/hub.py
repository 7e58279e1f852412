"""The event hub on `events.sock`: children write JSON lines, subscribers get them.

Producers never wait on consumers: each subscriber has a bounded queue and what does
not fit is dropped and counted (in total, and per subscriber through its ``on_drop``
callback, so a consumer such as the audit log can say what it never saw). Malformed lines
are counted and skipped; a line over the size limit drops the connection (the producer
reconnects).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import trio

MAX_LINE = 1024 * 1024
OnDrop = Callable[[bytes], None]
"""Called with the line each time one is dropped for one subscriber."""


class HubEvent(msgspec.Struct, frozen=True):
    """The fields every event has; the full JSON object travels alongside as `raw`."""

    kind: str
    time: float = 0.0
    source: str = ""


class HubStats(msgspec.Struct):
    received: int = 0
    malformed: int = 0
    dropped: int = 0
    oversized: int = 0
    connections: int = 0
    subscribers: int = 0
    by_kind: dict[str, int] = msgspec.field(default_factory=dict)


class EventHub:
    def __init__(self, path: Path, recent: int = 1000) -> None:
        self.path = path
        self.stats = HubStats()
        self._kinds: Counter[str] = Counter()
        self.recent: deque[bytes] = deque(maxlen=recent)
        # Alerts get their own ring: a burst of kernel events would push them out of
        # `recent` within a second, and `sentinel-stack alerts` lists them from here.
        self.recent_alerts: deque[bytes] = deque(maxlen=recent)
        self._subscribers: dict[
            trio.MemorySendChannel[bytes], tuple[tuple[str, ...], OnDrop | None]
        ] = {}
        self._decoder = msgspec.json.Decoder(HubEvent)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        sock.listen(256)
        try:
            await self.serve_socket(sock, task_status=task_status)
        finally:
            self.path.unlink(missing_ok=True)

    async def serve_socket(
        self,
        sock: trio.socket.SocketType,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on a socket already bound and listening, e.g. one systemd passed us
        (socket activation): its file belongs to whoever bound it, so it is left in place."""
        listener = trio.SocketListener(sock)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, [listener])
            task_status.started()

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.stats.connections += 1
        # A producer that vanishes mid-line loses only that line.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._read(stream)

    async def _read(self, stream: trio.SocketStream) -> None:
        buffer = b""
        async with stream:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.ingest(line)
                if len(buffer) > MAX_LINE:
                    self.stats.oversized += 1
                    return

    def ingest(self, line: bytes) -> None:
        try:
            event = self._decoder.decode(line)
        except msgspec.DecodeError:
            self.stats.malformed += 1
            return
        self.stats.received += 1
        self._kinds[event.kind] += 1
        self.recent.append(line)
        if event.kind == "alert":
            self.recent_alerts.append(line)
        for send, (prefixes, on_drop) in self._subscribers.items():
            if prefixes and not event.kind.startswith(prefixes):
                continue
            try:
                send.send_nowait(line)
            except trio.WouldBlock:
                self.stats.dropped += 1
                if on_drop is not None:
                    on_drop(line)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def snapshot(self) -> HubStats:
        self.stats.by_kind = dict(self._kinds)
        self.stats.subscribers = len(self._subscribers)
        return self.stats

    @asynccontextmanager
    async def subscribe(
        self, kinds: tuple[str, ...] = (), buffer: int = 10_000, on_drop: OnDrop | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[bytes]]:
        """Raw JSON lines whose kind starts with one of ``kinds`` (all when empty).

        ``on_drop`` (synchronous, cheap: it runs inside `ingest`) hears about every line
        this subscriber lost because its ``buffer`` was full."""
        send, receive = trio.open_memory_channel[bytes](buffer)
        self._subscribers[send] = (kinds, on_drop)
        try:
            yield receive
        finally:
            del self._subscribers[send]
            send.close()
