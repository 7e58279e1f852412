"""`sentinel-stack up`: run dir, containment, event hub, control API and the supervisor."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from sentinel_stack.cli.console import ConsolePrinter
from sentinel_stack.config.loader import ConfigError
from sentinel_stack.control.server import ControlServer, LauncherInfo
from sentinel_stack.events.hub import EventHub
from sentinel_stack.rundir import RunDir
from sentinel_stack.statedir import STATE_ENV, state_root
from sentinel_stack.supervisor.containment import Containment
from sentinel_stack.supervisor.events import EventBus, StackNotice
from sentinel_stack.supervisor.lifecycle import State
from sentinel_stack.supervisor.runner import RuntimeContext
from sentinel_stack.supervisor.spec import StackPlan
from sentinel_stack.supervisor.stack import Supervisor

if TYPE_CHECKING:
    from sentinel_stack.audit.settings import AuditSettings

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass
class Launch:
    """Everything `up` needs besides the plan."""

    config_text: str
    config_path: Path | None
    reload_plan: Callable[[], StackPlan]
    printer: ConsolePrinter | None = None
    audit: AuditSettings | None = None  # None: no audit log (tests that build a Launch)


def run_up(plan: StackPlan, launch: Launch) -> int:
    """Blocking entry point. Raises `AlreadyRunning` when the stack is up elsewhere."""
    run_dir = RunDir(plan.run_dir, plan.name)
    run_dir.acquire()
    try:
        config_file = launch.config_path or plan.run_dir / "config.toml"
        if launch.config_path is None:
            config_file.write_text(launch.config_text)
        use_cgroup = plan.use_cgroup and os.geteuid() == 0
        with Containment(
            plan.name, use_cgroup=use_cgroup, instance=str(plan.run_dir)
        ) as containment:
            return trio.run(_up, plan, launch, run_dir, containment, config_file)
    finally:
        run_dir.release()


async def _up(
    plan: StackPlan, launch: Launch, run_dir: RunDir, containment: Containment, config_file: Path
) -> int:
    bus = EventBus()
    extra_env = {
        "SENTINEL_STACK_PID": str(os.getpid()),
        "SENTINEL_CONFIG": str(config_file),
        # Children's own files (baselines, alerts, denylist entries) outlive the run dir.
        STATE_ENV: str(state_root(plan.name, launch.config_path, os.environ)),
    }
    if containment.cgroup is not None:
        extra_env["SENTINEL_STACK_CGROUP"] = str(containment.cgroup)
    ctx = RuntimeContext(
        run_dir=plan.run_dir,
        bus=bus,
        containment=containment,
        extra_env=extra_env,
        log_ring_lines=plan.log_ring_lines,
        log_max_bytes=plan.log_max_bytes,
        log_backups=plan.log_backups,
    )
    supervisor = Supervisor(plan, ctx)
    hub = EventHub(run_dir.events)
    stop_requested = trio.Event()
    audit = None
    if launch.audit is not None:
        from sentinel_stack.audit.service import AuditService

        audit = AuditService(launch.audit)

    def notice(message: str, level: str = "info") -> None:
        bus.publish(StackNotice(message, level, time.time()))

    async def reload() -> list[str]:
        try:
            new_plan = launch.reload_plan()
        except ConfigError as exc:
            notice(f"reload refused, keeping the running config:\n{exc}", "error")
            if audit is not None:
                audit.config_reloaded(config_file, None, str(exc))
            return []
        changes = await supervisor.reload(new_plan)
        if audit is not None:
            audit.config_reloaded(config_file, changes)
        notice("reloaded: " + (", ".join(changes) if changes else "nothing changed"))
        return changes

    info = LauncherInfo(
        plan.name,
        plan.run_dir,
        str(config_file),
        containment.mode,
        time.time(),
        stop_requested.set,
        reload,
        audit.status if audit is not None else None,
    )
    control = ControlServer(run_dir.control, supervisor, hub, bus, info)

    async with trio.open_nursery() as nursery:
        if launch.printer is not None:
            await nursery.start(launch.printer, bus)
        await nursery.start(hub.serve)
        if audit is not None:  # before the children start: their first restart is audited
            await nursery.start(audit.run, hub, bus, notice)
        await nursery.start(control.serve)
        nursery.start_soon(_signals, stop_requested, reload, notice, supervisor.kill_all)
        notice(
            f"starting stack `{plan.name}` ({len(plan.children)} children; "
            f"containment: {containment.mode}; run dir {plan.run_dir})"
        )
        if containment.cgroup_error:
            notice(f"no cgroup ({containment.cgroup_error}); using process groups", "warn")
        started = trio.current_time()
        await nursery.start(supervisor.run)
        down = [r.spec.name for r in supervisor.runners.values() if r.state is not State.RUNNING]
        elapsed = trio.current_time() - started
        if down:
            notice(f"degraded after {elapsed:.2f}s: not running: {', '.join(down)}", "warn")
        else:
            notice(f"all {len(plan.children)} children ready in {elapsed:.2f}s")
        async with trio.open_nursery() as waiters:

            async def first(event: trio.Event) -> None:
                await event.wait()
                waiters.cancel_scope.cancel()

            waiters.start_soon(first, stop_requested)
            waiters.start_soon(first, supervisor.failed)
        if supervisor.critical_failure:
            notice(f"stopping the stack: {supervisor.critical_failure}", "error")
        else:
            notice("stopping the stack")
        with trio.CancelScope(shield=True):
            await supervisor.shutdown()
            if audit is not None:
                await audit.close()  # the stop records, then a signed final checkpoint
        notice("stopped")
        bus.close()
        if launch.printer is not None:
            await launch.printer.done.wait()  # every event is on the terminal
        nursery.cancel_scope.cancel()
    return EXIT_FAILED if supervisor.critical_failure else EXIT_OK


async def _signals(
    stop: trio.Event,
    reload: Callable[[], object],
    notice: Callable[[str, str], None],
    kill_all: Callable[[str], None],
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                notice("SIGHUP: reloading the config", "info")
                await reload()  # type: ignore[misc]
            elif stop.is_set():
                # Not an exception: cancelling the runners would leave the shielded shutdown
                # waiting forever for children nobody reaps. Killing them lets it finish now.
                notice("second interrupt: killing every child now", "warn")
                kill_all("killed: second interrupt")
            else:
                stop.set()
