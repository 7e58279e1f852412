"""FrameTransport's socket fast path: whole frames, no lost bytes, no wasted system calls."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from sentinel_stack.agent import transport as transport_module
from sentinel_stack.agent.transport import FrameTransport


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every os.read the transport makes, by the number of bytes it returned (-1: EAGAIN)."""
    calls: list[int] = []
    real_read = os.read

    def read(fd: int, size: int) -> bytes:
        try:
            data = real_read(fd, size)
        except BlockingIOError:
            calls.append(-1)
            raise
        calls.append(len(data))
        return data

    monkeypatch.setattr(transport_module.os, "read", read)
    return calls


@asynccontextmanager
async def connected() -> AsyncIterator[tuple[FrameTransport, trio.SocketStream]]:
    """Our transport over one end of a socket pair, and the peer's end."""
    left, right = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(left), trio.SocketStream(right)
    async with ours, theirs:
        yield FrameTransport(ours), theirs


async def test_a_short_read_is_not_followed_by_a_read_that_would_block(
    counted_reads: list[int],
) -> None:
    async with connected() as (transport, theirs):
        await theirs.send_all(b"first")
        assert await transport.receive() == b"first"
        counted_reads.clear()
        async with trio.open_nursery() as nursery:
            # The queue was emptied by a short read: the next receive waits for readiness
            # instead of trying a read that can only say "would block".
            nursery.start_soon(_send_later, theirs, b"second")
            assert await transport.receive() == b"second"
        assert counted_reads == [6]


async def test_bytes_that_arrive_before_the_next_receive_are_read_at_once() -> None:
    async with connected() as (transport, theirs):
        await theirs.send_all(b"a")
        assert await transport.receive() == b"a"
        await theirs.send_all(b"b")
        with trio.fail_after(1):
            assert await transport.receive() == b"b"
        await theirs.aclose()
        assert await transport.receive() == b""


async def _send_later(stream: trio.SocketStream, data: bytes) -> None:
    await trio.sleep(0.01)
    await stream.send_all(data)


async def test_receive_after_the_stream_closed_is_a_closed_resource_error() -> None:
    async with connected() as (transport, theirs):
        await theirs.send_all(b"short")
        assert await transport.receive() == b"short"  # drained: the next receive waits
        await transport.stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await transport.receive()
