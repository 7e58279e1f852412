"""Publishing to the event hub: newline-delimited JSON over a Unix stream socket, in batches.

The probe must never stall on the hub: a stalled probe stops reading bpftrace, bpftrace stops
draining the kernel ring buffer, and the kernel drops events nobody counts in Python. So
`offer` never blocks: a line that does not fit in the queue is dropped and counted, and so
is everything offered while the hub is unreachable. The writer reconnects with exponential
backoff and sends whatever is queued in one write per wake-up (natural batching: one line
when idle, hundreds under load).
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import trio

__all__ = ["HubPublisher", "StdoutPublisher"]

log = logging.getLogger("sentinel_stack.probe.hub")


class HubPublisher:
    def __init__(
        self,
        path: Path,
        *,
        capacity: int = 4096,
        batch_max: int = 512,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.path = path
        self.batch_max = batch_max
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = False
        self.sent = 0
        self.dropped = 0
        self.connects = 0
        # Each item is (number of events, their JSON lines joined): one channel operation
        # per batch, not per event.
        self._send, self._receive = trio.open_memory_channel[tuple[int, bytes]](capacity)
        self._progress = trio.Event()

    def offer(self, lines: bytes, count: int = 1) -> bool:
        """Queue `count` JSON lines (each ending in a newline). False when dropped."""
        if not self.connected and self.connects:
            # Known to be down: do not let stale events pile up for a later burst.
            self.dropped += count
            return False
        try:
            self._send.send_nowait((count, lines))
        except trio.WouldBlock:
            self.dropped += count
            return False
        return True

    async def put(self, lines: bytes, count: int = 1) -> None:
        """Queue, waiting for room: for replays, which may go at the hub's pace."""
        await self._send.send((count, lines))

    async def drained(self, total: int) -> None:
        """Return once `total` events have been sent or dropped."""
        while self.sent + self.dropped < total:
            await self._progress.wait()

    async def run(self) -> None:
        """Connect, send, reconnect; runs until cancelled."""
        delay = self.backoff_initial
        while True:
            try:
                stream = await trio.open_unix_socket(str(self.path))
            except OSError as exc:
                self.connected = False
                self.connects = max(self.connects, 1)
                self._discard_queued()
                log.debug("event hub %s unreachable (%s); retrying in %.1fs", self.path, exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            self.connected = True
            self.connects += 1
            delay = self.backoff_initial
            log.info("connected to the event hub at %s", self.path)
            try:
                async with stream:
                    await self._pump(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.warning("lost the event hub connection (%s); reconnecting", exc)
            self.connected = False

    async def _pump(self, stream: trio.SocketStream) -> None:
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < self.batch_max:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            count = sum(n for n, _ in batch)
            try:
                await stream.send_all(b"".join(data for _, data in batch))
            except BaseException:
                self.dropped += count
                raise
            self.sent += count
            self._progress.set()
            self._progress = trio.Event()

    def _discard_queued(self) -> None:
        while True:
            try:
                count, _ = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            self.dropped += count


class StdoutPublisher:
    """For a probe run by hand without a hub: the same lines, on standard output."""

    def __init__(self) -> None:
        self.connected = True
        self.sent = 0
        self.dropped = 0
        self._out = sys.stdout.buffer

    async def put(self, lines: bytes, count: int = 1) -> None:
        self.offer(lines, count)
        await trio.lowlevel.checkpoint()

    async def drained(self, total: int) -> None:
        self._out.flush()
        await trio.lowlevel.checkpoint()

    def offer(self, lines: bytes, count: int = 1) -> bool:
        try:
            self._out.write(lines)
        except (BrokenPipeError, ValueError):
            self.dropped += count
            return False
        self.sent += count
        return True

    async def run(self) -> None:
        while True:
            await trio.sleep(0.2)
            try:
                self._out.flush()
            except (BrokenPipeError, ValueError):
                await trio.sleep(math.inf)
