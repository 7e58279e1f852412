"""Headless output of `up`: state changes, notices and log lines, for people or machines.

Writes happen in a worker thread, so a terminal or pipe that stops reading never stalls
the supervisor: events queue in the bus (bounded) and the overflow is counted.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from typing import TextIO

import msgspec
import trio

from sentinel_stack.supervisor.events import EventBus, LogLine, StackEvent, StackNotice, StateChange

_STATE_COLOURS = {
    "running": "32",
    "starting": "36",
    "backoff": "33",
    "stopping": "36",
    "stopped": "37",
    "exited": "33",
    "fatal": "31;1",
}
_LEVEL_COLOURS = {"info": "1", "warn": "33;1", "error": "31;1"}
_NAME_COLOURS = ("34", "35", "36", "32", "33", "94", "95", "96")


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class HumanFormat:
    def __init__(self, colour: bool, width: int = 10, *, supervisor_lines: bool = False) -> None:
        self.colour = colour
        self.width = width
        # `up` shows state changes as they happen; `logs` replays them from the log instead.
        self.supervisor_lines = supervisor_lines

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _name(self, name: str) -> str:
        code = _NAME_COLOURS[zlib.crc32(name.encode()) % len(_NAME_COLOURS)]
        return self._paint(code, name.ljust(self.width))

    def __call__(self, event: StackEvent) -> str:
        clock = (
            time.strftime("%H:%M:%S", time.localtime(event.time))
            + f".{int(event.time % 1 * 1000):03d}"
        )
        if isinstance(event, LogLine):
            if event.stream == "supervisor":
                if not self.supervisor_lines:
                    return ""  # the same news arrives as a StateChange
                return f"{clock} {self._name(event.child)} ▸ {event.line}"
            return f"{clock} {self._name(event.child)} | {event.line}"
        if isinstance(event, StateChange):
            pid = f" pid {event.pid}" if event.pid else ""
            state = self._paint(_STATE_COLOURS.get(event.state, "0"), event.state)
            reason = f" — {event.reason}" if event.reason else ""
            return f"{clock} {self._name(event.child)} ▸ {state}{pid}{reason}"
        level = self._paint(_LEVEL_COLOURS.get(event.level, "0"), "sentinel-stack")
        return f"{clock} {level}: {event.message}"


class JsonFormat:
    _encoder = msgspec.json.Encoder()

    def __call__(self, event: StackEvent) -> str:
        return self._encoder.encode(event).decode()


class ConsolePrinter:
    """Writes the bus's events until the bus is closed; `done` is set once all are out."""

    def __init__(self, json_lines: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.format = JsonFormat() if json_lines else HumanFormat(use_colour(self.stream))
        self.done = trio.Event()

    async def __call__(
        self, bus: EventBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            async with bus.subscribe(buffer=50_000) as subscription:
                task_status.started()
                reported_drops = 0
                async for first in subscription:
                    batch = [first]
                    while len(batch) < 1000:
                        try:
                            batch.append(subscription.receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    lines = [text for text in map(self.format, batch) if text]
                    if subscription.dropped > reported_drops:
                        skipped = subscription.dropped - reported_drops
                        notice = f"{skipped} lines not shown (output too slow)"
                        lines.append(self.format(StackNotice(notice, "warn", time.time())))
                        reported_drops = subscription.dropped
                    if lines:
                        await trio.to_thread.run_sync(self._write, "\n".join(lines) + "\n")
        finally:
            self.done.set()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass
