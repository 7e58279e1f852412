"""What feeds the TUI's model: a running stack's control API (or, in tests, a fake).

`ControlFeed.run` keeps four conversations with the launcher — a `status` poll, the bus
(state, log, stack), access records, and alerts/probe health — plus a poll of the proxy's
admin `/status`, and writes everything into a `TuiState`. It never touches a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from sentinel_stack.tui.client import ControlConnection, ControlFailed, NoStack, StackControl
from sentinel_stack.tui.proxy_admin import admin_address, fetch_status
from sentinel_stack.tui.state import TuiState
from sentinel_stack.tui.wire import ACCESS, BUS, GENERIC, status_from

Clock = Callable[[], float]
STATUS_EVERY = 1.0
PROXY_STATUS_EVERY = 2.0
BACKFILL_LINES = 500


class Feed(Protocol):
    """Fills a `TuiState` until the stack goes away; `gone` is then called once."""

    async def run(self, state: TuiState, clock: Clock, gone: Callable[[str], None]) -> None: ...

    async def backfill_logs(self, state: TuiState, child: str) -> None: ...


class Commands(Protocol):
    """What the TUI may ask of the stack."""

    async def call(self, op: str, **fields: Any) -> Any: ...

    async def down(self) -> None: ...


class ControlFeed:
    def __init__(self, control_path: Path) -> None:
        self.control_path = control_path

    async def run(self, state: TuiState, clock: Clock, gone: Callable[[str], None]) -> None:
        """Returns when the launcher hangs up (stack stopped); raises `NoStack` if none is
        there to begin with."""
        first = await ControlConnection.open(self.control_path)
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                tasks.append(group.create_task(self._poll_status(first, state, clock)))
                tasks.append(group.create_task(self._bus(state)))
                tasks.append(group.create_task(self._access(state, clock)))
                tasks.append(group.create_task(self._hub(state)))
                tasks.append(group.create_task(self._proxy(state, clock)))
                await tasks[0]  # the status poll ends when the launcher is gone
                for task in tasks[1:]:
                    task.cancel()
        finally:
            await first.close()
        state.on_disconnect()
        gone("the stack has stopped")

    async def _poll_status(
        self, connection: ControlConnection, state: TuiState, clock: Clock
    ) -> None:
        with contextlib.suppress(NoStack, ConnectionError, ControlFailed):
            while True:
                status = status_from(await connection.request("status"))
                state.on_status(status, clock())
                await asyncio.sleep(STATUS_EVERY)

    async def _stream(
        self, topics: list[str], on_batch: Callable[[Any], None], decoder: Any
    ) -> None:
        with contextlib.suppress(NoStack, ConnectionError, ControlFailed):
            async with await ControlConnection.open(self.control_path) as connection:
                async for batch in connection.stream("subscribe", decoder, topics=topics):
                    on_batch(batch)

    async def _bus(self, state: TuiState) -> None:
        await self._stream(["state", "log", "stack"], state.on_bus, BUS)

    async def _access(self, state: TuiState, clock: Clock) -> None:
        await self._stream(
            ["events:access"], lambda batch: state.on_access(batch, int(clock())), ACCESS
        )

    async def _hub(self, state: TuiState) -> None:
        def on_batch(batch: list[dict[str, Any]]) -> None:
            for event in batch:
                state.on_hub_event(event)

        await self._stream(["events:alert", "events:probe"], on_batch, GENERIC)

    async def _proxy(self, state: TuiState, clock: Clock) -> None:
        """The proxy's admin /status, while a proxy child runs and its admin port is known."""
        while True:
            await asyncio.sleep(PROXY_STATUS_EVERY)
            table = state.processes
            if not any(c.kind == "proxy" and c.state == "running" for c in table.children.values()):
                continue
            address = admin_address(table.stack.config)
            if address is not None:
                state.on_proxy_status(await fetch_status(address), int(clock()))

    async def backfill_logs(self, state: TuiState, child: str) -> None:
        """A child's lines from before the TUI attached, once per child."""
        if child in state.logs.backfilled:
            return
        with contextlib.suppress(NoStack, ConnectionError, ControlFailed):
            async with await ControlConnection.open(self.control_path) as connection:
                lines = await connection.request("logs", name=child, lines=BACKFILL_LINES)
            state.logs.backfill(
                child,
                (
                    (str(x.get("stream", "")), float(x.get("time", 0.0)), str(x.get("line", "")))
                    for x in lines
                ),
            )
            state.changed["logs"] += 1


def monotonic() -> float:
    return time.monotonic()


async def guarded(action: Awaitable[Any]) -> tuple[bool, str]:
    """Run a command; (ok, what to tell the user)."""
    try:
        result = await action
    except ControlFailed as exc:
        return False, str(exc)
    except (NoStack, ConnectionError) as exc:
        return False, f"the launcher is not answering ({exc})"
    if isinstance(result, dict) and "child" in result:
        return True, f"{result['child']}: {result.get('state', '?')}"
    return True, "done"


__all__ = ["Clock", "Commands", "ControlFeed", "Feed", "StackControl", "guarded", "monotonic"]
