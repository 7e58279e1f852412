"""Children's output: drained continuously, kept in a ring per child, written to rotated files.

Lines are handled a chunk at a time (one file write, one ring extend) so a child
flooding its stdout costs us little per line and is never left blocked on a full pipe.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

from sentinel_stack.supervisor.events import EventBus, LogLine

MAX_LINE = 64 * 1024


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


class RotatingFile:
    """Appends to ``path``; past ``max_bytes`` moves it to ``path.1`` (… ``path.N``)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size + len(data) > self.max_bytes and self._size > 0:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        self._file.close()


class ChildLog:
    """One child's log: ring buffer of recent lines + rotated file + live publication."""

    def __init__(
        self, name: str, path: Path, bus: EventBus, *, ring: int, max_bytes: int, backups: int
    ) -> None:
        self.name = name
        self.bus = bus
        self.ring: deque[LogLine] = deque(maxlen=ring)
        self.file = RotatingFile(path, max_bytes, backups)
        self._partial: dict[str, bytes] = {}
        self.lines = 0

    def feed(self, stream: str, chunk: bytes, now: float) -> None:
        """Take a chunk of raw output; complete lines are logged, the rest waits."""
        data = self._partial.pop(stream, b"") + chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        if len(rest) > MAX_LINE:  # a line with no end in sight: cut it
            parts.append(rest)
            rest = b""
        if rest:
            self._partial[stream] = rest
        if parts:
            self._emit(stream, parts, now)

    def flush(self, now: float) -> None:
        for stream in list(self._partial):
            self._emit(stream, [self._partial.pop(stream)], now)

    def note(self, text: str, now: float) -> None:
        """A line written by the supervisor itself about this child."""
        self._emit("supervisor", [text.encode()], now)

    def _emit(self, stream: str, raw_lines: list[bytes], now: float) -> None:
        prefix = f"{_stamp(now)} {self.name} {stream}| ".encode()
        self.file.write(b"".join(prefix + line + b"\n" for line in raw_lines))
        self.lines += len(raw_lines)
        keep = raw_lines[-(self.ring.maxlen or len(raw_lines)) :]
        records = [
            LogLine(self.name, stream, now, line.decode("utf-8", "replace").rstrip("\r"))
            for line in keep
        ]
        self.ring.extend(records)
        if self.bus.has_subscribers:
            for record in records:
                self.bus.publish(record)

    def tail(self, count: int) -> list[LogLine]:
        lines = list(self.ring)
        return lines[-count:] if count > 0 else lines

    def close(self) -> None:
        self.file.close()
