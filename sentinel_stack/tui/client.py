"""An asyncio client of the control API (Textual runs asyncio; the launcher's code is Trio).

One `ControlConnection` is one conversation on `control.sock`. The launcher answers the
requests of one connection in order and a streaming op (`subscribe`, `logs` with follow)
holds its connection until it is closed, so the TUI opens one connection per stream and
short-lived ones for commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from sentinel_stack.control.client import ControlFailed, NoStack
from sentinel_stack.tui.wire import RAW, Envelope, EnvelopeDecoder

__all__ = ["ControlConnection", "ControlFailed", "NoStack", "StackControl"]

CHUNK = 256 * 1024
_encode = msgspec.json.Encoder().encode
E = TypeVar("E")


class ControlConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = b""
        self._next_id = 0

    @classmethod
    async def open(cls, path: Path) -> ControlConnection:
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=CHUNK)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoStack(str(path)) from exc
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> ControlConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, op: str, **fields: Any) -> int:
        self._next_id += 1
        message = {"op": op, "id": self._next_id}
        message.update({k: v for k, v in fields.items() if v is not None})
        self._writer.write(_encode(message) + b"\n")
        await self._writer.drain()
        return self._next_id

    async def _batch(self, decoder: EnvelopeDecoder[E]) -> list[Envelope[E]]:
        """Every complete line that has arrived (at least one), decoded; [] at end of stream."""
        while b"\n" not in self._buffer:
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                return []
            self._buffer += chunk
        complete, _, self._buffer = self._buffer.rpartition(b"\n")
        return decoder.decode([line for line in complete.split(b"\n") if line.strip()])

    async def request(self, op: str, **fields: Any) -> Any:
        """One request, its one answer. Raises `ControlFailed` or `NoStack`."""
        await self._send(op, **fields)
        while batch := await self._batch(RAW):
            for message in batch:  # nothing but this answer follows on this connection
                if message.event is None:
                    return _result(message)
        raise NoStack("the launcher closed the connection")

    async def stream(
        self, op: str, decoder: EnvelopeDecoder[E], **fields: Any
    ) -> AsyncIterator[list[E]]:
        """Streamed events decoded by ``decoder``, in batches of what has arrived, until the
        stream ends."""
        await self._send(op, **fields)
        while batch := await self._batch(decoder):
            events = [m.event for m in batch if m.event is not None]
            if events:
                yield events
            for message in batch:
                if message.event is None:
                    _result(message)
                    return

    async def until_closed(self) -> None:
        """Wait for the launcher to hang up (after `down`, once everything has stopped)."""
        with contextlib.suppress(ConnectionError):
            while await self._reader.read(CHUNK):
                pass


def _result(message: Envelope[Any]) -> Any:
    if not message.ok:
        error = message.error or {}
        raise ControlFailed(str(error.get("code", "error")), str(error.get("message", "failed")))
    return message.result


class StackControl:
    """The commands the TUI sends, each on a connection of its own (a restart may take a while
    and must not hold up the status poll)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def call(self, op: str, **fields: Any) -> Any:
        async with await ControlConnection.open(self.path) as connection:
            return await connection.request(op, **fields)

    async def down(self) -> None:
        """Ask for a graceful shutdown and return once the launcher has stopped everything."""
        async with await ControlConnection.open(self.path) as connection:
            await connection.request("down")
            await connection.until_closed()
