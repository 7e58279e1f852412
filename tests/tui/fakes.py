"""A fake stack for TUI tests: a feed the test drives and commands it records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sentinel_stack.tui.state import TuiState
from sentinel_stack.tui.wire import (
    AccessView,
    AgentCallView,
    ChildRow,
    HubCounters,
    LogEvent,
    NoticeEvent,
    StackInfo,
    StackStatus,
    StateEvent,
)

T0 = 1_700_000_000.0  # wall-clock time of the fake events (14:13:20 UTC)


def children() -> list[ChildRow]:
    return [
        ChildRow(
            "demo",
            "process",
            "running",
            101,
            120.0,
            0,
            None,
            "",
            "serving",
            False,
            [],
            0.5,
            30 * 1024 * 1024,
            2,
            10,
        ),
        ChildRow(
            "waf",
            "agent",
            "running",
            102,
            119.0,
            1,
            "exit 1",
            "",
            "ready",
            False,
            [],
            1.5,
            40 * 1024 * 1024,
            3,
            12,
        ),
        ChildRow(
            "proxy",
            "proxy",
            "running",
            103,
            118.0,
            0,
            None,
            "",
            "listening",
            True,
            ["waf", "demo"],
            12.0,
            80 * 1024 * 1024,
            4,
            40,
        ),
        ChildRow(
            "probe",
            "probe",
            "running",
            104,
            117.0,
            0,
            None,
            "",
            "",
            False,
            [],
            3.0,
            50 * 1024 * 1024,
            2,
            9,
        ),
    ]


def status(
    rows: list[ChildRow] | None = None,
    by_kind: dict[str, int] | None = None,
    failure: str | None = None,
) -> StackStatus:
    return StackStatus(
        StackInfo(
            "demo-stack", 4242, "/tmp/run", "/nonexistent.toml", "process-groups", 300.0, failure
        ),
        rows if rows is not None else children(),
        HubCounters(received=10, by_kind=by_kind or {}),
    )


def access(i: int, status: int = 200, blocked: bool = False) -> AccessView:
    return AccessView(
        time=T0 + i,
        status=403 if blocked else status,
        latency_ms=1.0 + (i % 50),
        method="GET",
        path=f"/api/item/{i % 7}",
        route="api" if i % 3 else "static",
        upstream="demo",
        target="127.0.0.1:8081",
        client_ip=f"10.0.0.{i % 5}",
        decided_by="waf" if blocked else "",
        agents=[AgentCallView("waf", "block" if blocked else "allow", 0.4 + (i % 4) / 10)],
        rule_ids=["942100"] if blocked else [],
        request_id=f"req-{i}",
    )


def alert(i: int, severity: str = "high") -> dict[str, Any]:
    return {
        "kind": "alert",
        "time": T0 + i,
        "source": "detector",
        "rule": f"rule-{i}",
        "severity": severity,
        "technique": "T1059.004",
        "tactic": "execution",
        "summary": f"shell spawned by the web app ({i})",
        "chain": [
            {
                "time": T0 + i - 2,
                "kind": "access",
                "method": "POST",
                "path": "/upload",
                "status": 200,
            },
            {
                "time": T0 + i - 1,
                "kind": "kernel.exec",
                "comm": "sh",
                "pid": 999,
                "filename": "/bin/sh",
            },
        ],
    }


PROBE_HEALTH = {
    "kind": "probe.health",
    "time": T0,
    "backend": "procfs",
    "ready": True,
    "scope": "stack",
    "programs": ["exec", "lifecycle", "tcp"],
    "programs_attached": 3,
    "events_per_second": 42.0,
    "events_total": 4200,
    "lost_events": 7,
    "hub_connected": True,
}


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakeFeed:
    """Feeds a fixed stack; the test pushes more through `state` and ends it with `finish`."""

    def __init__(self, initial: StackStatus | None = None, *, populate: bool = True) -> None:
        self.initial = initial if initial is not None else status()
        self.populate = populate
        self.state: TuiState | None = None
        self.clock: Callable[[], float] | None = None
        self.backfills: list[str] = []
        self._done = asyncio.Event()
        self._gone: Callable[[str], None] | None = None
        self.started = asyncio.Event()

    async def run(
        self, state: TuiState, clock: Callable[[], float], gone: Callable[[str], None]
    ) -> None:
        self.state, self.clock, self._gone = state, clock, gone
        state.on_status(self.initial, clock())
        if self.populate:
            fill(state, clock)
        self.started.set()
        await self._done.wait()
        state.on_disconnect()
        gone("the stack has stopped")

    def finish(self) -> None:
        self._done.set()

    async def backfill_logs(self, state: TuiState, child: str) -> None:
        self.backfills.append(child)
        state.logs.backfill(child, [("stdout", T0 - 10, f"{child}: started earlier")])
        state.changed["logs"] += 1


def fill(state: TuiState, clock: Callable[[], float]) -> None:
    """A little of everything: logs, traffic, alerts, probe figures."""
    second = int(clock())
    for name in ("demo", "waf", "proxy", "probe"):
        state.on_bus(
            [
                LogEvent(name, "stdout", T0 + 1, f"{name} INFO listening"),
                LogEvent(name, "stderr", T0 + 2, f"{name} WARNING slow start"),
                LogEvent(name, "stderr", T0 + 3, f"{name} ERROR something failed [x]"),
            ]
        )
    state.on_bus([NoticeEvent("all 4 children ready in 0.52s", "info", T0)])
    for s in range(second - 10, second):
        state.on_access([access(i + s) for i in range(20)], s)
    state.on_access([access(1, blocked=True), access(2, status=502)], second - 1)
    for i, severity in enumerate(("medium", "critical", "high", "low")):
        state.on_hub_event(alert(i, severity))
    state.on_hub_event(PROBE_HEALTH)
    by_kind = {"kernel.exec": 100, "kernel.open": 1000, "access": 200, "alert": 4}
    state.on_status(status(by_kind=by_kind), clock() - 1)
    state.on_status(status(by_kind={k: v * 2 for k, v in by_kind.items()}), clock())


class FakeCommands:
    def __init__(self, feed: FakeFeed | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.downs = 0
        self.feed = feed

    async def call(self, op: str, **fields: Any) -> Any:
        self.calls.append((op, fields))
        if self.feed is not None and self.feed.state is not None and op in ("stop", "restart"):
            self.feed.state.on_bus(
                [
                    StateEvent(
                        fields["name"],
                        "stopped" if op == "stop" else "running",
                        "running",
                        "",
                        None,
                        T0,
                    )
                ]
            )
        return {"child": fields.get("name"), "state": "stopped" if op == "stop" else "running"}

    async def down(self) -> None:
        self.downs += 1
        if self.feed is not None:
            self.feed.finish()
