"""The supervisor of a whole stack: children in dependency order, commands, reload, shutdown."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterable

import msgspec
import trio

from sentinel_stack.supervisor.lifecycle import State
from sentinel_stack.supervisor.resources import ResourceSampler
from sentinel_stack.supervisor.runner import ChildRunner, RuntimeContext
from sentinel_stack.supervisor.spec import ChildSpec, StackPlan

_DOWN = (State.STOPPED, State.EXITED, State.FATAL)
RELOADABLE = frozenset({"proxy", "probe", "detector"})  # reload on SIGHUP, in place


class ChildStatus(msgspec.Struct, frozen=True):
    name: str
    kind: str
    state: str
    pid: int | None
    uptime: float | None
    restarts: int
    last_exit: str | None
    reason: str
    status: str
    critical: bool
    depends_on: list[str]
    socket: str | None
    ready_latency: float | None
    cpu_percent: float | None = None
    rss: int | None = None
    threads: int | None = None
    fds: int | None = None


class UnknownChild(KeyError):
    def __str__(self) -> str:
        return f"no child named `{self.args[0]}` in this stack"


class Supervisor:
    def __init__(self, plan: StackPlan, ctx: RuntimeContext) -> None:
        self.plan = plan
        self.ctx = ctx
        ctx.on_change = self._on_change
        self.runners: dict[str, ChildRunner] = {}
        self.sockets: dict[str, socket.socket] = {}
        self.critical_failure: str | None = None
        self.failed = trio.Event()
        self._sampler = ResourceSampler()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every child in dependency order; `started` once all have settled.

        Runs until cancelled; call `shutdown` first for an orderly stop.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in self.plan.children:
                    self._launch(spec)
                for runner in list(self.runners.values()):
                    await runner.settled.wait()
                task_status.started()
        finally:
            for sock in self.sockets.values():
                sock.close()

    def _launch(self, spec: ChildSpec) -> None:
        assert self._nursery is not None
        runner = ChildRunner(spec, self.ctx, self._listen_socket(spec))
        self.runners[spec.name] = runner
        deps = [self.runners[d] for d in spec.depends_on if d in self.runners]
        self._nursery.start_soon(runner.run, deps, name=f"child:{spec.name}")

    def _listen_socket(self, spec: ChildSpec) -> socket.socket | None:
        """Bind an agent's socket once; it outlives restarts so no connection is lost.

        Agents that cannot take an fd (``socket_activation = false``) bind the path
        themselves; we only make sure no stale socket file is in their way.
        """
        if spec.socket is None:
            return None
        if not spec.socket_activation:
            spec.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            spec.socket.unlink(missing_ok=True)
            return None
        existing = self.sockets.get(spec.name)
        if existing is not None and existing.getsockname() == str(spec.socket):
            return existing
        if existing is not None:
            existing.close()
        spec.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.socket.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(spec.socket))
        os.chmod(spec.socket, 0o600)
        sock.listen(1024)
        self.sockets[spec.name] = sock
        return sock

    def _on_change(self, runner: ChildRunner) -> None:
        if runner.spec.critical and runner.state is State.FATAL and not self.failed.is_set():
            self.critical_failure = f"`{runner.spec.name}` is fatal: {runner.lifecycle.reason}"
            self.failed.set()

    def runner(self, name: str) -> ChildRunner:
        try:
            return self.runners[name]
        except KeyError:
            raise UnknownChild(name) from None

    async def start(self, name: str) -> None:
        runner = self.runner(name)
        runner.request_start()
        await runner.wait_until(lambda r: r.state in (State.RUNNING, State.EXITED, State.FATAL))

    async def stop(self, name: str) -> None:
        await self.runner(name).stop()

    async def restart(self, name: str) -> None:
        await self.runner(name).restart()

    async def shutdown(self, names: Iterable[str] | None = None) -> None:
        """Stop children, dependents before what they depend on; independent ones at once."""
        chosen = [self.runners[n] for n in (names if names is not None else self.runners)]
        dependents = {
            r.spec.name: [o for o in chosen if r.spec.name in o.spec.depends_on] for r in chosen
        }

        async def stop_one(runner: ChildRunner) -> None:
            for dependent in dependents[runner.spec.name]:
                await dependent.wait_until(lambda r: r.state in _DOWN)
            await runner.stop()

        async with trio.open_nursery() as nursery:
            for runner in chosen:
                nursery.start_soon(stop_one, runner)

    async def reload(self, plan: StackPlan) -> list[str]:
        """Apply a new plan: restart only children whose spec changed. Returns what changed."""
        old = {spec.name: spec for spec in self.plan.children}
        new = {spec.name: spec for spec in plan.children}
        removed = [n for n in old if n not in new]
        changed = [n for n in new if n in old and _differs(old[n], new[n])]
        added = [n for n in new if n not in old]
        await self.shutdown([*removed, *changed])
        for name in [*removed, *changed]:
            runner = self.runners.pop(name)
            runner.cancel()
            await runner.finished.wait()  # its notify socket and log file are released
            if name in removed and name in self.sockets:
                self.sockets.pop(name).close()
        self.plan = plan
        for spec in plan.children:
            if spec.name in changed or spec.name in added:
                self._launch(spec)
        # Built-in components read their settings (routes, rules, ...) from the config file
        # themselves: an unchanged command line does not mean unchanged settings.
        told = [
            f"^{name}"
            for name in new
            if name not in changed
            and name not in added
            and new[name].kind in RELOADABLE
            and self.runners[name].send_signal(signal.SIGHUP)
        ]
        return (
            [f"-{n}" for n in removed]
            + [f"~{n}" for n in changed]
            + [f"+{n}" for n in added]
            + told
        )

    def kill_all(self, reason: str) -> None:
        """The impatient end of a shutdown: every child SIGKILLed now (the runners still reap
        them, so a `shutdown` in progress finishes at once instead of waiting its timeouts)."""
        for runner in self.runners.values():
            runner.kill_now(reason)

    def status(self) -> list[ChildStatus]:
        result = []
        for runner in self.runners.values():
            spec = runner.spec
            figures = self._sampler.sample(runner.pid)
            last_exit = runner.lifecycle.last_exit
            result.append(
                ChildStatus(
                    name=spec.name,
                    kind=spec.kind,
                    state=str(runner.state),
                    pid=runner.pid,
                    uptime=runner.uptime(),
                    restarts=runner.lifecycle.restarts,
                    last_exit=str(last_exit) if last_exit else None,
                    reason=runner.lifecycle.reason,
                    status=runner.status_text,
                    critical=spec.critical,
                    depends_on=list(spec.depends_on),
                    socket=str(spec.socket) if spec.socket else None,
                    ready_latency=runner.ready_latency,
                    cpu_percent=figures.cpu_percent if figures else None,
                    rss=figures.rss if figures else None,
                    threads=figures.threads if figures else None,
                    fds=figures.fds if figures else None,
                )
            )
        self._sampler.forget_others({r.pid for r in self.runners.values() if r.pid})
        return result


def _differs(a: ChildSpec, b: ChildSpec) -> bool:
    return a != b
