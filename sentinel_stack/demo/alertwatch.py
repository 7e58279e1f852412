"""Watch a running stack's alerts through its control API (`subscribe`, topic ``events:alert``).

`AlertWatcher.run` is started with ``await nursery.start(watcher.run)`` and reports started
only once the subscription is known to be live: it writes a marker event to the hub and
waits for it to come back, so no alert raised after `start` returns can be missed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import trio

from sentinel_stack.control.client import ControlFailed, NoStack
from sentinel_stack.demo.report import SeenAlert

__all__ = ["MARKER_KIND", "AlertWatcher"]

MARKER_KIND = "simulation.marker"
SYNC_TIMEOUT = 10.0


class _HubLine(msgspec.Struct):
    kind: str = ""
    rule: str = ""
    severity: str = ""
    summary: str = ""
    source: str = ""
    marker: str = ""


class _Error(msgspec.Struct):
    code: str = "error"
    message: str = ""


class _ControlLine(msgspec.Struct):
    id: int = 0
    ok: bool | None = None
    event: _HubLine | None = None
    error: _Error | None = None


_decode_line = msgspec.json.Decoder(_ControlLine).decode


class AlertWatcher:
    """Every alert the stack raises while it runs, stamped with ``clock()`` on arrival."""

    def __init__(
        self, control: Path, events: Path, clock: Callable[[], float] = trio.current_time
    ) -> None:
        self.control = control
        self.events = events
        self.clock = clock
        self.alerts: list[SeenAlert] = []
        self._arrived = trio.Event()
        self._marker = uuid.uuid4().hex
        self._synced = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            stream = await trio.open_unix_socket(str(self.control))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoStack(str(self.control)) from exc
        async with stream, trio.open_nursery() as nursery:
            topics = ["events:alert", f"events:{MARKER_KIND}"]
            request = {"op": "subscribe", "id": 1, "topics": topics}
            await stream.send_all(msgspec.json.encode(request) + b"\n")
            nursery.start_soon(self._read, stream)
            with trio.fail_after(SYNC_TIMEOUT):
                while not self._synced.is_set():  # the hub may not have the subscriber yet
                    await self._send_marker()
                    with trio.move_on_after(0.2):
                        await self._synced.wait()
            task_status.started()

    async def _send_marker(self) -> None:
        line = {"kind": MARKER_KIND, "time": time.time(), "source": "simulate-attacks"}
        line["marker"] = self._marker
        async with await trio.open_unix_socket(str(self.events)) as hub:
            await hub.send_all(msgspec.json.encode(line) + b"\n")

    async def _read(self, stream: trio.SocketStream) -> None:
        buffer = b""
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise NoStack("the launcher closed the control connection")
            *lines, buffer = (buffer + chunk).split(b"\n")
            for raw in lines:
                if raw.strip():
                    self._take(_decode_line(raw))

    def _take(self, line: _ControlLine) -> None:
        if line.error is not None:
            raise ControlFailed(line.error.code, line.error.message)
        event = line.event
        if event is None:
            return
        if event.kind == MARKER_KIND:
            if event.marker == self._marker:
                self._synced.set()
            return
        if event.kind != "alert":
            return
        rule = event.rule or "(no rule)"
        self.alerts.append(
            SeenAlert(rule, self.clock(), event.severity, event.summary, event.source)
        )
        self._arrived.set()
        self._arrived = trio.Event()

    async def wait_until(
        self, condition: Callable[[list[SeenAlert]], bool], deadline: float
    ) -> bool:
        """Wait for ``condition(alerts)`` until the trio clock reaches ``deadline``."""
        with trio.move_on_at(deadline):
            while not condition(self.alerts):
                await self._arrived.wait()
        return condition(self.alerts)
