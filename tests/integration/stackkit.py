"""Build stacks of fake children for tests and run them under a real Supervisor."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sentinel_stack.config import load_config_text
from sentinel_stack.config.plan import build_plan
from sentinel_stack.supervisor.containment import Containment
from sentinel_stack.supervisor.events import EventBus, StateChange
from sentinel_stack.supervisor.runner import ChildRunner, RuntimeContext
from sentinel_stack.supervisor.spec import StackPlan
from sentinel_stack.supervisor.stack import Supervisor

FAKE = str(Path(__file__).resolve().parents[1] / "fakechild.py")


@dataclass
class StackKit:
    """Writes TOML for fake children; `record` collects their start/term lines."""

    dir: Path
    tables: list[str] = field(default_factory=list)

    @property
    def record(self) -> Path:
        return self.dir / "record.txt"

    def child(self, name: str, *flags: str, table: str = "processes", **fields: object) -> None:
        command = [sys.executable, FAKE, "--name", name, "--record", str(self.record), *flags]
        lines = [f"[{table}.{name}]", f"command = {json.dumps(command)}"]
        fields.setdefault("readiness", {"notify": True, "timeout": "10s"})
        for key, value in fields.items():
            lines.append(f"{key} = {_toml(value)}")
        self.tables.append("\n".join(lines))

    def text(self, name: str = "t") -> str:
        return f'[stack]\nname = "{name}"\nshutdown_timeout = "5s"\n\n' + "\n\n".join(self.tables)

    def plan(self) -> StackPlan:
        loaded = load_config_text(self.text(), "test.toml")
        return build_plan(loaded, run_dir=self.dir / "run")

    def records(self, verb: str = "start") -> list[tuple[str, int, float]]:
        if not self.record.exists():
            return []
        found = []
        for line in self.record.read_text().splitlines():
            parts = line.split()
            if parts[0] == verb:
                found.append((parts[1], int(parts[2]), float(parts[3])))
        return found


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


class Changes(list[StateChange]):
    """State changes as the bus delivered them; `until` waits for one to arrive."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = trio.Event()

    def add(self, change: StateChange) -> None:
        self.append(change)
        self._arrived.set()
        self._arrived = trio.Event()

    async def until(self, child: str, state: str, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not any(c.child == child and c.state == state for c in self):
                await self._arrived.wait()


@asynccontextmanager
async def running(
    plan: StackPlan, extra_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Supervisor, Changes]]:
    """Run ``plan``; yields once every child settled, with a live list of state changes."""
    bus = EventBus()
    changes = Changes()
    with Containment(f"test-{uuid.uuid4().hex[:8]}", use_cgroup=os.geteuid() == 0) as box:
        ctx = RuntimeContext(
            run_dir=plan.run_dir,
            bus=bus,
            containment=box,
            extra_env={"SENTINEL_STACK_PID": str(os.getpid()), **(extra_env or {})},
        )
        supervisor = Supervisor(plan, ctx)
        async with trio.open_nursery() as nursery:

            async def collect(
                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
            ) -> None:
                async with bus.subscribe() as subscription:
                    task_status.started()
                    async for event in subscription:
                        if isinstance(event, StateChange):
                            changes.add(event)

            await nursery.start(collect)
            await nursery.start(supervisor.run)
            try:
                yield supervisor, changes
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(20):
                    await supervisor.shutdown()
                nursery.cancel_scope.cancel()


async def wait_for(runner: ChildRunner, *states: str, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        await runner.wait_until(lambda r: str(r.state) in states)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
