"""What the supervisor reports as it works: typed events, and a bounded fan-out bus.

A slow subscriber (a terminal, a TUI, a control client) never slows the supervisor:
its queue is bounded and what does not fit is dropped and counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import trio


class StateChange(msgspec.Struct, tag="state", frozen=True):
    child: str
    state: str
    previous: str
    reason: str
    pid: int | None
    time: float


class LogLine(msgspec.Struct, tag="log", frozen=True):
    child: str
    stream: str
    time: float
    line: str


class StackNotice(msgspec.Struct, tag="stack", frozen=True):
    """Launcher-level news: ready, degraded, reloading, shutting down."""

    message: str
    level: str
    time: float


StackEvent = StateChange | LogLine | StackNotice


class Subscription:
    def __init__(self, receive: trio.MemoryReceiveChannel[StackEvent]) -> None:
        self.receive = receive
        self.dropped = 0

    def __aiter__(self) -> AsyncIterator[StackEvent]:
        return self.receive.__aiter__()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[Subscription, trio.MemorySendChannel[StackEvent]] = {}

    def close(self) -> None:
        """End every subscription (after what is already queued): the stack is done."""
        for send in self._subscribers.values():
            send.close()

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: StackEvent) -> None:
        for subscription, send in self._subscribers.items():
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                subscription.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    @asynccontextmanager
    async def subscribe(self, buffer: int = 10_000) -> AsyncIterator[Subscription]:
        send, receive = trio.open_memory_channel[StackEvent](buffer)
        subscription = Subscription(receive)
        self._subscribers[subscription] = send
        try:
            yield subscription
        finally:
            del self._subscribers[subscription]
            send.close()
            receive.close()
