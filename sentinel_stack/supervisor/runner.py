"""One supervised child: a Trio task that spawns, watches, restarts and stops it.

Decisions (restart or not, after how long, when to give up) belong to the pure
`Lifecycle`; this module only does the I/O around it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

from sentinel_stack.supervisor.containment import Containment
from sentinel_stack.supervisor.events import EventBus, StateChange
from sentinel_stack.supervisor.lifecycle import ExitStatus, Lifecycle, Restart, State
from sentinel_stack.supervisor.logs import ChildLog
from sentinel_stack.supervisor.notify import Notification, NotifyListener
from sentinel_stack.supervisor.readiness import wait_ready
from sentinel_stack.supervisor.spec import ChildSpec

# Runs the program with LISTEN_PID set to its own pid, as sd_listen_fds(3) requires; the
# program and its arguments are passed as argv, never pasted into the script.
_SET_LISTEN_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'
_DRAIN_GRACE = 1.0


@dataclass
class RuntimeContext:
    """What every runner of one stack shares."""

    run_dir: Path
    bus: EventBus
    containment: Containment
    extra_env: Mapping[str, str] = field(default_factory=dict)
    log_ring_lines: int = 2000
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 3
    random: Callable[[], float] = random.random
    on_change: Callable[[ChildRunner], None] = lambda runner: None


class ChildRunner:
    def __init__(
        self, spec: ChildSpec, ctx: RuntimeContext, listen_socket: socket.socket | None = None
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.listen_socket = listen_socket
        self.lifecycle = Lifecycle(spec.restart)
        self.log = ChildLog(
            spec.name,
            ctx.run_dir / "logs" / f"{spec.name}.log",
            ctx.bus,
            ring=ctx.log_ring_lines,
            max_bytes=ctx.log_max_bytes,
            backups=ctx.log_backups,
        )
        self.notify = NotifyListener(ctx.run_dir / "notify" / f"{spec.name}.sock")
        self.pid: int | None = None
        self.status_text = ""
        self.settled = trio.Event()  # first ready, successful exit, or fatal
        self.ready_latency: float | None = None
        self._want_running = True
        self._changed = trio.Event()
        self._stop_event = trio.Event()
        self._ready_event = trio.Event()
        self._watchdog_event = trio.Event()
        self._kill_reason = ""
        self._early: list[Notification] | None = None
        self._spawned_at = 0.0
        self._scope = trio.CancelScope()
        self.finished = trio.Event()  # the task is over: sockets closed, log file closed

    def cancel(self) -> None:
        """End the runner's task (after `stop`, when the child leaves the plan)."""
        self._scope.cancel()

    def kill_now(self, reason: str) -> None:
        """SIGKILL the child and whatever it left behind, at once. The runner goes on as for
        any exit: it reaps the child, and a stop in progress completes."""
        if self.pid is None:
            return
        self._kill_reason = reason
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.ctx.containment.kill_child(self.spec.name, self.pid)

    # ---- what others ask -------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.lifecycle.state

    @property
    def usable_as_dependency(self) -> bool:
        """Running, or a one-shot job that finished successfully."""
        last = self.lifecycle.last_exit
        return self.state is State.RUNNING or (
            self.state is State.EXITED and last is not None and last.success
        )

    def send_signal(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the main process (not its group); False when nothing runs."""
        if self.pid is None or self.state is not State.RUNNING:
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def uptime(self) -> float | None:
        ready = self.lifecycle.ready_at
        if self.state is State.RUNNING and ready is not None:
            return trio.current_time() - ready
        return None

    async def wait_until(self, predicate: Callable[[ChildRunner], bool]) -> None:
        while not predicate(self):
            await self._changed.wait()

    def request_start(self) -> None:
        self._want_running = True
        if self.state in (State.EXITED, State.FATAL, State.STOPPED):
            self.lifecycle.forget_restarts()
        self._poke()

    async def stop(self) -> None:
        """Stop the child (and keep it stopped); returns once it is down."""
        self._want_running = False
        self._stop_event.set()
        self._poke()
        await self.wait_until(lambda r: r.state in (State.STOPPED, State.EXITED, State.FATAL))

    async def restart(self) -> None:
        await self.stop()
        self.request_start()
        await self.wait_until(lambda r: r.state in (State.RUNNING, State.EXITED, State.FATAL))

    # ---- the task ----------------------------------------------------------------------

    async def run(self, dependencies: list[ChildRunner]) -> None:
        await self.notify.bind()
        try:
            with self._scope:
                await self._run(dependencies)
        finally:
            self.notify.close()
            self.log.close()
            self.finished.set()

    async def _run(self, dependencies: list[ChildRunner]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.notify.serve, self._on_datagram)
            await self._supervise(dependencies)  # returns only by cancellation

    async def _supervise(self, dependencies: list[ChildRunner]) -> None:
        for dep in dependencies:
            await dep.settled.wait()
            if not dep.usable_as_dependency:
                self._set(
                    partial(self.lifecycle.fail, f"dependency `{dep.spec.name}` is {dep.state}")
                )
                self.settled.set()
                self._want_running = False
                break
        while True:
            if not self._want_running:
                wake = self._changed
                await wake.wait()
                continue
            self._set(lambda: self.lifecycle.start(trio.current_time()))
            status = await self._run_process()
            previous = self.state
            decision = self.lifecycle.exited(trio.current_time(), status, self.ctx.random())
            self.pid = None
            self._publish_state("", previous)
            if isinstance(decision, Restart):
                with trio.move_on_after(decision.delay):
                    await self._stop_event.wait()
                if not self._want_running:
                    self._set(self.lifecycle.stop)
                continue
            self.settled.set()
            self._want_running = False

    async def _run_process(self) -> ExitStatus:
        self._stop_event = trio.Event()
        self._ready_event = trio.Event()
        self._kill_reason = ""
        self.notify.drain()
        argv, env, listen_fd = self._command()
        if argv is None:
            return ExitStatus(code=127, reason=f"command not found: {self.spec.argv[0]}")
        self._early = []  # READY=1 may beat us to learning the pid: hold it until then
        try:
            process = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.spec.cwd,
                start_new_session=True,
                close_fds=listen_fd is None,
                preexec_fn=self.ctx.containment.preexec(self.spec.name, listen_fd),
            )
        except OSError as exc:
            self._early = None
            return ExitStatus(code=127, reason=f"cannot start: {exc.strerror or exc}")
        self.pid = process.pid
        early, self._early = self._early, None
        for message in early or ():
            self._on_datagram(message)
        self._spawned_at = trio.current_time()
        self.ctx.containment.register(process.pid)
        self._publish_state("spawned")
        drained = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drain_both, process, drained)
            nursery.start_soon(self._become_ready, process)
            nursery.start_soon(self._stop_when_asked, process)
            code = await process.wait()
            # Whatever the child left behind (grandchildren) goes with it.
            self.ctx.containment.kill_child(self.spec.name, process.pid)
            with trio.move_on_after(_DRAIN_GRACE):
                await drained.wait()
            nursery.cancel_scope.cancel()
        self.ctx.containment.forget(process.pid)
        self.log.flush(time.time())
        if code < 0:
            return ExitStatus(signal=-code, reason=self._kill_reason)
        return ExitStatus(code=code, reason=self._kill_reason)

    def _command(self) -> tuple[list[str] | None, dict[str, str], int | None]:
        spec = self.spec
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "NOTIFY_SOCKET",
                "LISTEN_FDS",
                "LISTEN_PID",
                "LISTEN_FDNAMES",
                "WATCHDOG_USEC",
                "WATCHDOG_PID",
            )
        }
        env.update(spec.env)
        env.update(self.ctx.extra_env)
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        if spec.watchdog:
            env["WATCHDOG_USEC"] = str(int(spec.watchdog * 1_000_000))
        program = spec.argv[0]
        if "/" not in program and shutil.which(program, path=env.get("PATH")) is None:
            return None, env, None
        argv = list(spec.argv)
        listen_fd = None
        if self.listen_socket is not None and spec.socket_activation:
            env.update(LISTEN_FDS="1", LISTEN_FDNAMES=spec.name)
            argv = ["/bin/sh", "-c", _SET_LISTEN_PID, *argv]
            listen_fd = self.listen_socket.fileno()
        return argv, env, listen_fd

    async def _drain_both(self, process: trio.Process, drained: trio.Event) -> None:
        async with trio.open_nursery() as nursery:
            for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr")):
                if stream is not None:
                    nursery.start_soon(self._drain, stream, name)
        drained.set()

    async def _drain(self, stream: trio.abc.ReceiveStream, name: str) -> None:
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            self.log.feed(name, bytes(chunk), time.time())

    async def _become_ready(self, process: trio.Process) -> None:
        check = self.spec.readiness
        if check.kind != "none":
            with trio.move_on_after(check.timeout) as scope:
                if check.kind == "notify":
                    await self._ready_event.wait()
                else:
                    await wait_ready(check)
            if scope.cancelled_caught:
                self._kill_reason = f"not ready within {check.timeout:g}s ({check.kind} check)"
                self._signal_group(process, signal.SIGKILL)
                return
        if self.state is not State.STARTING:
            return
        self.ready_latency = trio.current_time() - self._spawned_at
        self._set(lambda: self.lifecycle.ready(trio.current_time()))
        self.settled.set()
        if self.spec.watchdog:
            await self._watchdog(process, self.spec.watchdog)

    async def _watchdog(self, process: trio.Process, interval: float) -> None:
        while True:
            self._watchdog_event = trio.Event()
            with trio.move_on_after(interval) as scope:
                await self._watchdog_event.wait()
            if scope.cancelled_caught:
                self._kill_reason = f"watchdog: no WATCHDOG=1 within {interval:g}s"
                self.log.note(self._kill_reason, time.time())
                self._signal_group(process, signal.SIGKILL)
                return

    async def _stop_when_asked(self, process: trio.Process) -> None:
        await self._stop_event.wait()
        previous = self.state
        if self.lifecycle.stop():
            self._publish_state("stop requested", previous)
        self._signal_group(process, signal.Signals[self.spec.stop_signal])
        with trio.move_on_after(self.spec.stop_timeout):
            await process.wait()
            return
        self._kill_reason = f"did not stop within {self.spec.stop_timeout:g}s; killed"
        self.log.note(self._kill_reason, time.time())
        self._signal_group(process, signal.SIGKILL)
        self.ctx.containment.kill_child(self.spec.name, process.pid)

    def _signal_group(self, process: trio.Process, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    # ---- notifications -------------------------------------------------------------------

    def _accept_pid(self, pid: int) -> bool:
        if self.pid is None:
            return False
        if pid == self.pid:
            return True
        try:
            return os.getpgid(pid) == self.pid
        except ProcessLookupError:
            return True  # exited already (see notify.py: drain() keeps this safe)

    def _on_datagram(self, message: Notification) -> None:
        if self._early is not None:
            self._early.append(message)
        elif self._accept_pid(message.pid):
            self._on_notification(message)

    def _on_notification(self, message: Notification) -> None:
        if message.ready:
            self._ready_event.set()
        if message.watchdog_ping:
            self._watchdog_event.set()
        if message.watchdog_trigger:
            self._kill_reason = "watchdog triggered by the child"
            if self.pid is not None:
                self.ctx.containment.kill_child(self.spec.name, self.pid)
        if "STATUS" in message.fields:
            self.status_text = message.fields["STATUS"]
            self._poke()

    # ---- state publication -------------------------------------------------------------

    def _set(self, change: Callable[[], object]) -> None:
        previous = self.state
        change()
        self._publish_state("", previous)

    def _publish_state(self, note: str, previous: State | None = None) -> None:
        reason = note or self.lifecycle.reason
        event = StateChange(
            child=self.spec.name,
            state=str(self.state),
            previous=str(previous if previous is not None else self.state),
            reason=reason,
            pid=self.pid,
            time=time.time(),
        )
        text = f"{event.state}" + (f" (pid {self.pid})" if self.pid else "")
        self.log.note(text + (f": {reason}" if reason else ""), event.time)
        self.ctx.bus.publish(event)
        self.ctx.on_change(self)
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
