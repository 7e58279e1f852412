"""The denylist agent's control socket: add, remove and list entries while it runs.

One JSON object per line on a Unix socket (``$SENTINEL_RUN_DIR/agents/denylist.ctl`` in a
stack), answered by one line carrying the request's ``id``, as the launcher's control API
does. The socket is born 0600 and each peer's uid is checked with ``SO_PEERCRED``: only the
agent's own user (or root) may change what is denied. ``sentinel-stack deny`` is a client;
automatic remediation can be another.

::

    → {"id": 1, "op": "add", "kind": "ip", "value": "203.0.113.7", "ttl": "10m", "reason": "scan"}
    ← {"id": 1, "ok": true, "result": {"entry": {...}, "saved": true}}
    → {"id": 2, "op": "remove", "kind": "ip", "value": "203.0.113.7"}
    ← {"id": 2, "ok": true, "result": {"removed": true, "entry": {...}}}
    → {"id": 3, "op": "list"}
    ← {"id": 3, "ok": true, "result": {"entries": [{..., "remaining_ttl": 598.2}]}}
    ← {"id": 4, "ok": false, "error": {"code": "invalid", "message": "..."}}
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import msgspec
import trio

__all__ = ["ControlError", "ControlRequest", "serve_control"]

log = logging.getLogger("sentinel_agents.denylist.control")

MAX_LINE = 64 * 1024
_PEERCRED = struct.Struct("3i")


class ControlRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One command. ``ttl`` is ``"10m"``-style text or seconds; None: permanent."""

    op: Literal["add", "remove", "list"]
    id: int = 0
    kind: str = "ip"
    value: str = ""
    header: str = ""
    ttl: str | float | None = None
    reason: str = ""


class ControlError(Exception):
    """A refused command: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ControlHandler = Callable[[ControlRequest], Awaitable[Any]]
_decoder = msgspec.json.Decoder(ControlRequest)
_encoder = msgspec.json.Encoder()


def peer_uid(sock: socket.socket | trio.socket.SocketType) -> int:
    """The connected peer's user id (``struct ucred`` is pid, uid, gid)."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(data)
    return int(uid)


async def serve_control(
    path: Path,
    handler: ControlHandler,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``path`` (0600) until cancelled; removes the socket file when it stops."""
    _remove_stale(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # born 0600: no moment where another user may connect
    try:
        await sock.bind(os.fspath(path))
    finally:
        os.umask(old_umask)
    sock.listen(16)
    try:
        async with trio.open_nursery() as nursery:

            async def handle(stream: trio.SocketStream) -> None:
                await _converse(stream, handler)

            await nursery.start(trio.serve_listeners, handle, [trio.SocketListener(sock)])
            log.info("control socket ready", extra={"control_socket": str(path)})
            task_status.started()
    finally:
        _unlink(path)


async def _converse(stream: trio.SocketStream, handler: ControlHandler) -> None:
    """One client; nothing it sends, and no bug in answering it, stops the server."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        async with stream:
            uid = peer_uid(stream.socket)
            if uid not in (os.geteuid(), 0):
                log.warning("control client refused", extra={"uid": uid})
                await _reply(stream, 0, error=ControlError("forbidden", "not the agent's owner"))
                return
            buffer = b""
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        await _answer(stream, line, handler)
                if len(buffer) > MAX_LINE:
                    await _reply(stream, 0, error=ControlError("bad-request", "line too long"))
                    return


async def _answer(stream: trio.SocketStream, line: bytes, handler: ControlHandler) -> None:
    try:
        request = _decoder.decode(line)
    except msgspec.DecodeError as error:
        await _reply(stream, 0, error=ControlError("bad-request", str(error)))
        return
    try:
        result = await handler(request)
    except ControlError as error:
        await _reply(stream, request.id, error=error)
        return
    except Exception as error:
        log.exception("control command failed", extra={"op": request.op})
        await _reply(stream, request.id, error=ControlError("internal", repr(error)))
        return
    await _reply(stream, request.id, result=result)


async def _reply(
    stream: trio.SocketStream,
    request_id: int,
    *,
    result: Any = None,
    error: ControlError | None = None,
) -> None:
    message: dict[str, Any] = {"id": request_id, "ok": error is None}
    if error is None:
        message["result"] = result
    else:
        message["error"] = {"code": error.code, "message": error.message}
    await stream.send_all(_encoder.encode(message) + b"\n")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _remove_stale(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket; set control_socket elsewhere")
    path.unlink()
