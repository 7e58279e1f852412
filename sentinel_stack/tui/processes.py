"""The process table and the stack's overall health, from `status` polls and state events.

Pure: the caller passes the time (monotonic seconds) with each update, and uptimes keep
counting between polls from that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from sentinel_stack.tui.format import printable
from sentinel_stack.tui.wire import ChildRow, StackInfo, StackStatus, StateEvent

SORT_KEYS = ("name", "kind", "state", "pid", "uptime", "restarts", "cpu", "rss")
FAILING = frozenset({"fatal", "backoff", "exited"})
HEALTHY = frozenset({"running", "starting"})
_STATE_ORDER = {
    "fatal": 0,
    "backoff": 1,
    "exited": 2,
    "stopping": 3,
    "starting": 4,
    "stopped": 5,
    "running": 6,
}


@dataclass(frozen=True)
class ProcessRow:
    name: str
    kind: str
    state: str
    pid: int | None
    uptime: float | None
    restarts: int
    last_exit: str
    cpu_percent: float | None
    rss: int | None
    detail: str
    critical: bool


@dataclass(frozen=True)
class Health:
    ok: bool
    word: str  # ok | degraded | failed | stopping | connecting | stopped
    reason: str
    failing: tuple[str, ...]


class ProcessTable:
    def __init__(self) -> None:
        self.children: dict[str, ChildRow] = {}
        self.stack = StackInfo()
        self.polled_at: float | None = None
        self.sort_key = "name"
        self.reverse = False
        self.stopping = False
        self.gone = False  # the launcher hung up

    def on_status(self, status: StackStatus, now: float) -> None:
        self.children = {row.name: row for row in status.children}
        self.stack = status.stack
        self.polled_at = now

    def on_state(self, event: StateEvent) -> None:
        """A state change shows at once; the next poll fills in pid, uptime and figures."""
        row = self.children.get(event.child)
        if row is None:
            row = ChildRow(event.child)
        uptime = 0.0 if event.state == "running" and row.state != "running" else row.uptime
        if event.state not in ("running", "starting", "stopping"):
            uptime = None
        self.children[event.child] = msgspec.structs.replace(
            row,
            state=event.state,
            pid=event.pid if event.state in ("running", "starting", "stopping") else None,
            reason=event.reason,
            uptime=uptime,
        )

    def cycle_sort(self) -> str:
        """Next sort column; the same column again flips the order."""
        self.sort_by(SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)])
        return self.sort_key

    def sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.reverse = not self.reverse
        else:
            self.sort_key = key
            self.reverse = key in ("uptime", "restarts", "cpu", "rss")  # biggest first

    def uptime_of(self, row: ChildRow, now: float) -> float | None:
        if row.uptime is None or self.polled_at is None:
            return row.uptime
        return row.uptime + max(0.0, now - self.polled_at) if row.state == "running" else None

    def stack_uptime(self, now: float) -> float:
        if self.polled_at is None:
            return self.stack.uptime
        return self.stack.uptime + max(0.0, now - self.polled_at)

    def rows(self, now: float) -> list[ProcessRow]:
        rows = [
            ProcessRow(
                name=printable(c.name),
                kind=printable(c.kind),
                state=printable(c.state),
                pid=c.pid,
                uptime=self.uptime_of(c, now),
                restarts=c.restarts,
                last_exit=printable(c.last_exit or ""),
                cpu_percent=c.cpu_percent,
                rss=c.rss,
                detail=printable(c.status or c.reason),
                critical=c.critical,
            )
            for c in self.children.values()
        ]
        rows.sort(key=_sort_key(self.sort_key), reverse=self.reverse)
        return rows

    def health(self) -> Health:
        if self.gone:
            return Health(False, "stopped", "the launcher has stopped", ())
        if self.polled_at is None:
            return Health(False, "connecting", "waiting for the launcher", ())
        if self.stack.failure:
            return Health(False, "failed", self.stack.failure, ())
        if self.stopping:
            return Health(False, "stopping", "shutting down", ())
        failing = tuple(sorted(n for n, c in self.children.items() if c.state in FAILING))
        idle = tuple(sorted(n for n, c in self.children.items() if c.state not in HEALTHY))
        if not idle:
            return Health(True, "ok", f"{len(self.children)} running", ())
        parts = [f"{n} {self.children[n].state}" for n in idle]
        return Health(False, "degraded", ", ".join(parts), failing or idle)


def _sort_key(key: str) -> Callable[[ProcessRow], tuple[Any, str]]:
    def value(row: ProcessRow) -> tuple[Any, str]:
        match key:
            case "kind":
                return (row.kind, row.name)
            case "state":
                return (_STATE_ORDER.get(row.state, 9), row.name)
            case "pid":
                return (row.pid or 0, row.name)
            case "uptime":
                return (row.uptime or 0.0, row.name)
            case "restarts":
                return (row.restarts, row.name)
            case "cpu":
                return (row.cpu_percent or 0.0, row.name)
            case "rss":
                return (row.rss or 0, row.name)
        return (row.name, "")

    return value
