"""A blocking control client for the CLI (one request, or a stream of answers)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec


class NoStack(ConnectionError):
    """No launcher answers on this control socket."""


class ControlFailed(RuntimeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ControlClient:
    def __init__(self, path: Path, timeout: float | None = 30.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self.sock.close()
            raise NoStack(str(path)) from exc
        self._buffer = b""
        self._next_id = 0
        self._timeout = timeout
        self._deadline: float | None = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _send(self, op: str, **fields: Any) -> int:
        self._next_id += 1
        message = {
            "op": op,
            "id": self._next_id,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.sock.sendall(msgspec.json.encode(message) + b"\n")
        return self._next_id

    def _lines(self) -> Iterator[dict[str, Any]]:
        while True:
            while b"\n" not in self._buffer:
                if self._deadline is not None:
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        return
                    self.sock.settimeout(
                        left if self._timeout is None else min(left, self._timeout)
                    )
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    if self._deadline is not None and time.monotonic() >= self._deadline:
                        return
                    raise
                if not chunk:
                    return
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            yield msgspec.json.decode(line)

    def request(self, op: str, **fields: Any) -> Any:
        self._send(op, **fields)
        for message in self._lines():
            if "event" in message:
                continue
            if not message.get("ok"):
                error = message.get("error") or {}
                raise ControlFailed(error.get("code", "error"), error.get("message", "failed"))
            return message.get("result")
        raise NoStack("the launcher closed the connection")

    def stream(
        self, op: str, *, until: float | None = None, **fields: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield streamed events until the launcher ends the stream or goes away, or until
        the monotonic time ``until`` passes."""
        self._deadline = until
        self._send(op, **fields)
        for message in self._lines():
            if "event" in message:
                yield message["event"]
            elif not message.get("ok"):
                error = message.get("error") or {}
                raise ControlFailed(error.get("code", "error"), error.get("message", "failed"))
            else:
                return
