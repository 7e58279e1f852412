"""In-process fixtures for agent tests: a server on a real Unix socket, and a gated agent."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from sentinel_stack.agent import Agent, AgentServer
from sentinel_stack.protocol import (
    Audit,
    Decision,
    EventKind,
    RequestComplete,
    RequestHeaders,
    ResponseHeaders,
    allow,
    block,
)


class GatedAgent(Agent):
    """Requests to ``/hold`` wait until the test opens their gate; ``/boom`` raises."""

    name = "gated"
    version = "1.0"
    events = (EventKind.REQUEST_HEADERS, EventKind.REQUEST_COMPLETE)

    def __init__(self) -> None:
        self.gates: dict[int, trio.Event] = {}
        self.entered: dict[int, trio.Event] = {}
        self.cancelled: dict[int, trio.Event] = {}
        self.completed: list[RequestComplete] = []

    def _event(self, table: dict[int, trio.Event], cid: int) -> trio.Event:
        return table.setdefault(cid, trio.Event())

    async def wait_entered(self, cid: int) -> None:
        await self._event(self.entered, cid).wait()

    async def wait_cancelled(self, cid: int) -> None:
        await self._event(self.cancelled, cid).wait()

    def release(self, cid: int) -> None:
        self._event(self.gates, cid).set()

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        cid = request.correlation_id
        if request.path == "/boom":
            raise RuntimeError("rule file vanished")
        if request.path == "/hold":
            self._event(self.entered, cid).set()
            try:
                await self._event(self.gates, cid).wait()
            except trio.Cancelled:
                self._event(self.cancelled, cid).set()
                raise
        if request.path.startswith("/admin"):
            return block(403, audit=Audit(reason=str(cid)))
        return allow(audit=Audit(reason=str(cid)))

    async def on_response_headers(self, response: ResponseHeaders) -> Decision:
        return block(500)  # never called: not subscribed

    async def on_request_complete(self, complete: RequestComplete) -> None:
        self.completed.append(complete)


def request(cid: int, path: str = "/") -> RequestHeaders:
    return RequestHeaders(correlation_id=cid, request_id=f"r{cid}", method="GET", path=path)


@asynccontextmanager
async def short_tmpdir() -> AsyncIterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sa-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def running_server(
    agent: Agent, **options: Any
) -> AsyncIterator[tuple[AgentServer, Path, trio.Event]]:
    """Serve ``agent`` on a fresh socket; the event is set when `serve` returns."""
    async with short_tmpdir() as tmp:
        path = tmp / "agent.sock"
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(str(path))
        sock.listen()
        server = AgentServer(agent, **options)
        stopped = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[None]) -> None:
            await server.serve(trio.SocketListener(sock), task_status=task_status)
            stopped.set()

        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            yield server, path, stopped
            nursery.cancel_scope.cancel()
