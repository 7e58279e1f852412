"""The supervisor's end of sd_notify: one datagram socket per child.

Messages are only accepted from processes of the child's current process group
(checked with SCM_CREDENTIALS). A sender that has already exited cannot be checked —
`systemd-notify` usually has by the time we look — so it is believed; what makes that
safe is `drain()` before every spawn: whatever a previous incarnation sent is discarded
then, because its processes are all dead and their datagrams already queued.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

_CREDS = struct.Struct("3i")


@dataclass(frozen=True)
class Notification:
    fields: dict[str, str]
    pid: int

    @property
    def ready(self) -> bool:
        return self.fields.get("READY") == "1"

    @property
    def watchdog_ping(self) -> bool:
        return self.fields.get("WATCHDOG") == "1"

    @property
    def watchdog_trigger(self) -> bool:
        return self.fields.get("WATCHDOG") == "trigger"


def parse_notification(data: bytes, pid: int) -> Notification:
    fields = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return Notification(fields, pid)


class NotifyListener:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock = trio.socket.from_stdlib_socket(self._raw)
        self._bound = False

    async def bind(self) -> None:
        await self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._bound = True

    def drain(self) -> int:
        """Discard queued datagrams (sent by an earlier incarnation); returns how many."""
        dropped = 0
        while True:
            try:
                self._raw.recv(4096, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: the queue is empty
                return dropped
            dropped += 1

    async def serve(self, deliver: Callable[[Notification], None]) -> None:
        """Deliver every credentialed datagram; the receiver decides whom to believe."""
        cmsg_size = socket.CMSG_SPACE(_CREDS.size)
        while True:
            data, ancdata, _flags, _addr = await self.sock.recvmsg(4096, cmsg_size)
            pid = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _CREDS.unpack(payload[: _CREDS.size])[0]
            if pid:
                deliver(parse_notification(data, pid))

    def close(self) -> None:
        self.sock.close()
        if self._bound:
            self.path.unlink(missing_ok=True)
