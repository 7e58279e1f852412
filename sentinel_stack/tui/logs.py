"""Each child's recent output, kept per child in a bounded ring, with search and level filter."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from sentinel_stack.tui.format import printable

LEVELS = ("debug", "info", "warning", "error")
FILTERS = ("all", "info", "warning", "error")  # show lines at this level or above
_LEVEL_WORD = re.compile(
    r"\b(?:level[\"']?\s*[:=]\s*[\"']?)?(critical|fatal|error|err|warning|warn|info|debug|trace)\b",
    re.IGNORECASE,
)
_WORD_LEVEL = {
    "critical": "error",
    "fatal": "error",
    "error": "error",
    "err": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}


def line_level(stream: str, line: str) -> str:
    """A line's level from the first level word in its first 80 characters, else info."""
    match = _LEVEL_WORD.search(line, 0, 80)
    if match:
        return _WORD_LEVEL[match.group(1).lower()]
    return "info"


@dataclass(frozen=True)
class LogEntry:
    time: float
    stream: str
    line: str
    level: str

    def passes(self, minimum: str, needle: str) -> bool:
        if minimum != "all" and LEVELS.index(self.level) < LEVELS.index(minimum):
            return False
        return not needle or needle in self.line.lower()


class LogBook:
    def __init__(self, lines_per_child: int = 2000) -> None:
        self.capacity = lines_per_child
        self._lines: dict[str, deque[LogEntry]] = {}
        self.backfilled: set[str] = set()
        self.added: dict[str, int] = {}  # live lines appended, per child
        self.epoch: dict[str, int] = {}  # bumped when older lines are merged in

    def add(self, child: str, stream: str, time: float, line: str) -> None:
        ring = self._lines.get(child)
        if ring is None:
            ring = self._lines[child] = deque(maxlen=self.capacity)
        line = printable(line)
        ring.append(LogEntry(time, stream, line, line_level(stream, line)))
        self.added[child] = self.added.get(child, 0) + 1

    def backfill(self, child: str, lines: Iterable[tuple[str, float, str]]) -> None:
        """Lines from before the TUI attached (`logs` op): kept where older than the live ones."""
        ring = self._lines.get(child) or deque(maxlen=self.capacity)
        first_live = ring[0].time if ring else float("inf")
        older = [
            LogEntry(time, stream, printable(line), line_level(stream, line))
            for stream, time, line in lines
            if time < first_live
        ]
        merged: deque[LogEntry] = deque(older, maxlen=self.capacity)
        merged.extend(ring)
        self._lines[child] = merged
        self.backfilled.add(child)
        self.epoch[child] = self.epoch.get(child, 0) + 1

    def lines(self, child: str, minimum: str = "all", text: str = "") -> list[LogEntry]:
        needle = text.lower()
        return [e for e in self._lines.get(child, ()) if e.passes(minimum, needle)]

    def newest(
        self, child: str, count: int, minimum: str = "all", text: str = ""
    ) -> list[LogEntry]:
        """Of the last ``count`` lines, those that pass the filter, oldest first."""
        ring = self._lines.get(child)
        if not ring:
            return []
        needle = text.lower()
        count = min(count, len(ring))
        return [
            ring[i] for i in range(len(ring) - count, len(ring)) if ring[i].passes(minimum, needle)
        ]

    def forget_others(self, children: Iterable[str]) -> None:
        """Drop the lines of children that no longer exist (after a reload)."""
        keep = set(children)
        for name in list(self._lines):
            if name not in keep:
                del self._lines[name]
                self.backfilled.discard(name)
