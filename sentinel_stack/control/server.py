"""The launcher's control server. Only the launcher's own user (or root) may connect."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio

from sentinel_stack.control.messages import (
    ErrorInfo,
    Reply,
    Request,
    Streamed,
    encoder,
    request_decoder,
)
from sentinel_stack.events.hub import EventHub
from sentinel_stack.supervisor.events import EventBus, LogLine, StackNotice
from sentinel_stack.supervisor.stack import Supervisor, UnknownChild

_PEERCRED = struct.Struct("3i")
MAX_REQUEST = 64 * 1024


def peer_uid(sock: trio.socket.SocketType) -> int:
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(data)  # struct ucred: pid, uid, gid
    return int(uid)


@dataclass
class LauncherInfo:
    name: str
    run_dir: Path
    config: str
    containment: str
    started: float
    down: Callable[[], None]
    reload: Callable[[], Awaitable[list[str]]]
    audit: Callable[[], dict[str, Any]] | None = None  # the audit log's head, for status


class ControlServer:
    def __init__(
        self, path: Path, supervisor: Supervisor, hub: EventHub, bus: EventBus, info: LauncherInfo
    ) -> None:
        self.path = path
        self.supervisor = supervisor
        self.hub = hub
        self.bus = bus
        self.info = info
        self.refused = 0
        self._send_locks: dict[trio.SocketStream, trio.Lock] = {}

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        sock.listen(64)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle, [trio.SocketListener(sock)])
                task_status.started()
        finally:
            self.path.unlink(missing_ok=True)

    async def _handle(self, stream: trio.SocketStream) -> None:
        """One client. Nothing a client does, or a bug in answering it, takes the stack down."""
        try:
            await self._converse(stream)
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away mid-answer
        except* Exception as group:
            self.bus.publish(
                StackNotice(
                    f"control API: answering a client failed: {group.exceptions[0]!r}",
                    "error",
                    time.time(),
                )
            )
        finally:
            self._send_locks.pop(stream, None)

    async def _converse(self, stream: trio.SocketStream) -> None:
        uid = peer_uid(stream.socket)
        async with stream:
            if uid not in (os.geteuid(), 0):
                self.refused += 1
                reply = Reply(0, False, error=ErrorInfo("forbidden", "not the stack's owner"))
                await stream.send_all(encoder.encode(reply) + b"\n")
                return
            buffer = b""
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        await self._dispatch(stream, line)
                if len(buffer) > MAX_REQUEST:
                    return

    async def _send(self, stream: trio.SocketStream, message: Reply | Streamed) -> None:
        # One client may be answered by several tasks at once (a subscription forwards hub
        # lines and bus events side by side): whole lines, one writer at a time.
        lock = self._send_locks.get(stream)
        if lock is None:
            lock = self._send_locks[stream] = trio.Lock()
        async with lock:
            await stream.send_all(encoder.encode(message) + b"\n")

    async def _dispatch(self, stream: trio.SocketStream, line: bytes) -> None:
        try:
            request = request_decoder.decode(line)
        except msgspec.DecodeError as exc:
            await self._send(stream, Reply(0, False, error=ErrorInfo("bad-request", str(exc))))
            return
        try:
            result = await self._execute(stream, request)
        except UnknownChild as exc:
            await self._send(stream, Reply(request.id, False, error=ErrorInfo("unknown", str(exc))))
            return
        await self._send(stream, Reply(request.id, True, result=result))

    async def _execute(self, stream: trio.SocketStream, request: Request) -> Any:
        sup = self.supervisor
        match request.op:
            case "status":
                return self.status()
            case "start" | "stop" | "restart":
                name = request.name or ""
                await getattr(sup, request.op)(name)
                return {"child": name, "state": str(sup.runner(name).state)}
            case "logs":
                return await self._logs(stream, request)
            case "subscribe":
                return await self._subscribe(stream, request)
            case "down":
                self.info.down()
                return {"stopping": True}
            case "reload":
                return {"changes": await self.info.reload()}
            case "alerts":  # the newest `lines` alerts the hub has seen, oldest first
                recent = list(self.hub.recent_alerts)[-max(0, request.lines) :]
                return [msgspec.Raw(line) for line in recent]
        return None

    def status(self) -> dict[str, Any]:
        return {
            "stack": {
                "name": self.info.name,
                "pid": os.getpid(),
                "run_dir": str(self.info.run_dir),
                "config": self.info.config,
                "containment": self.info.containment,
                "uptime": time.time() - self.info.started,
                "failure": self.supervisor.critical_failure,
            },
            "children": self.supervisor.status(),
            "events": self.hub.snapshot(),
            "audit": self.info.audit() if self.info.audit is not None else None,
        }

    async def _logs(self, stream: trio.SocketStream, request: Request) -> Any:
        runner = self.supervisor.runner(request.name or "")
        if not request.follow:
            return runner.log.tail(request.lines)
        async with self.bus.subscribe() as subscription:
            for line in runner.log.tail(request.lines):
                await self._send(stream, Streamed(request.id, line))
            async for event in subscription:
                if isinstance(event, LogLine) and event.child == runner.spec.name:
                    await self._send(stream, Streamed(request.id, event))
        return None

    async def _subscribe(self, stream: trio.SocketStream, request: Request) -> Any:
        topics = set(request.topics or ("state", "log", "stack"))
        kinds = tuple(t.removeprefix("events:") for t in topics if t.startswith("events"))
        async with trio.open_nursery() as nursery:
            if "events" in topics or kinds:
                nursery.start_soon(
                    self._forward_hub,
                    stream,
                    request.id,
                    tuple(k for k in kinds if k and k != "events"),
                )
            async with self.bus.subscribe() as subscription:
                async for event in subscription:
                    tag = type(event).__struct_config__.tag
                    if tag in topics:
                        await self._send(stream, Streamed(request.id, event))
        return None

    async def _forward_hub(
        self, stream: trio.SocketStream, request_id: int, kinds: tuple[str, ...]
    ) -> None:
        async with self.hub.subscribe(kinds) as lines:
            async for line in lines:
                await self._send(stream, Streamed(request_id, msgspec.Raw(line)))
