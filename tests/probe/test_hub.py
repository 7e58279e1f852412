"""Publishing to the hub over a real Unix socket (Trio)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from sentinel_stack.probe.hub import HubPublisher


class Hub:
    """A stand-in event hub counting lines and writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[dict[str, Any]] = []
        self.reads = 0
        self.changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(str(self.path))
        sock.listen()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle, [trio.SocketListener(sock)])
            task_status.started()

    async def _handle(self, stream: trio.SocketStream) -> None:
        pending = b""
        async for chunk in stream:
            self.reads += 1
            *lines, pending = (pending + chunk).split(b"\n")
            self.lines.extend(json.loads(line) for line in lines)
            self.changed.set()
            self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.lines) < count:
                await self.changed.wait()


def line(i: int) -> bytes:
    return json.dumps({"kind": "kernel.exec", "time": float(i), "source": "probe"}).encode() + b"\n"


async def test_batches_arrive_in_order_in_few_writes(short_dir: Path) -> None:
    hub = Hub(short_dir / "events.sock")
    publisher = HubPublisher(hub.path)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.serve)
        nursery.start_soon(publisher.run)
        with trio.fail_after(5):
            while not publisher.connected:
                await trio.sleep(0.01)
        for start in range(0, 1000, 100):
            assert publisher.offer(b"".join(line(i) for i in range(start, start + 100)), 100)
        await hub.wait_for(1000)
        nursery.cancel_scope.cancel()
    assert [e["time"] for e in hub.lines] == [float(i) for i in range(1000)]
    assert hub.reads < 100 and publisher.sent == 1000 and publisher.dropped == 0


async def test_unreachable_hub_drops_and_counts_then_recovers(short_dir: Path) -> None:
    hub = Hub(short_dir / "events.sock")
    publisher = HubPublisher(hub.path, backoff_initial=0.01, backoff_max=0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.run)
        with trio.fail_after(5):
            while publisher.connects == 0:
                await trio.sleep(0.01)
        assert not publisher.offer(line(1), 1)  # known down: dropped at once, never blocks
        assert publisher.dropped == 1
        await nursery.start(hub.serve)
        with trio.fail_after(5):
            while not publisher.connected:
                await trio.sleep(0.01)
        assert publisher.offer(line(2), 1)
        await hub.wait_for(1)
        nursery.cancel_scope.cancel()
    assert [e["time"] for e in hub.lines] == [2.0]


async def test_a_full_queue_drops_instead_of_blocking(short_dir: Path) -> None:
    publisher = HubPublisher(short_dir / "nobody.sock", capacity=2)
    assert publisher.offer(line(1), 1) and publisher.offer(line(2), 1)
    assert not publisher.offer(line(3), 5)
    assert publisher.dropped == 5
