"""N worker processes behind one proxy (`[proxy] workers = N > 1`), supervised by it.

Each worker is ``python -m sentinel_stack.proxy --worker K`` serving the proxy's listeners
(`server.ProxyServer` with a `WorkerRole`), with one end of a socketpair to this process
(`workerwire`). The supervisor:

- starts every worker and is started (`nursery.start`) once each has said `Ready`; a
  worker that exits before its first `Ready` ends the proxy with the reason;
- restarts a worker that exits, with backoff (reset after a stable run);
- drains them all (`Drain`, then SIGKILL for one still running `KILL_AFTER` later);
- sends `Reload` with the config text it validated, so all load the same revision, and
  starts or stops workers when ``workers`` changed;
- scrapes their snapshots for the admin listener, keeping a dead worker's counters.

Listeners: ``shared`` (default) binds each listening socket once, here, and every worker
inherits it: a worker that dies leaves no queue of unaccepted connections behind, and an
idle worker accepts more than a busy one. ``reuseport`` has each worker bind its own socket
with SO_REUSEPORT and the kernel hash connections over them (choose it with
``SENTINEL_PROXY_WORKER_SOCKETS=reuseport``; see docs/proxy.md for the measurements).

Nothing outlives the parent: a worker gets PR_SET_PDEATHSIG (SIGTERM) and drains when its
socketpair reads end-of-file. Workers are spawned from this (main) thread on purpose: the
death signal follows the thread that forked, and Trio's `run_process` forks from worker
threads that come and go.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sentinel_stack.proxy.aggregate import retire
from sentinel_stack.proxy.workerwire import (
    Drain,
    Family,
    Ready,
    Reload,
    Reloaded,
    Scrape,
    Snapshot,
    ToParent,
    WireChannel,
    WireError,
)

log = logging.getLogger("sentinel.proxy.workers")

SOCKET_MODES = ("shared", "reuseport")
START_TIMEOUT = 30.0
BACKOFF_INITIAL, BACKOFF_MAX, STABLE_AFTER = 0.1, 5.0, 10.0
KILL_AFTER = 15.0  # hypercorn's graceful_timeout (10 s) and some
SCRAPE_TIMEOUT = 1.0
# Ours to give each worker, or its parent's business, never a worker's.
_NOT_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


class WorkerStartFailed(Exception):
    """A worker exited before it was ready: the proxy cannot serve as configured."""


@dataclass
class Listeners:
    """The sockets workers inherit (shared mode); empty lists in reuseport mode."""

    plain: list[socket.socket] = field(default_factory=list)
    secure: list[socket.socket] = field(default_factory=list)

    def close(self) -> None:
        for sock in [*self.plain, *self.secure]:
            sock.close()


@dataclass
class Incarnation:
    """One run of a worker process."""

    process: subprocess.Popen[bytes]
    channel: WireChannel[ToParent]
    started: float = field(default_factory=time.time)
    ready: bool = False
    exited: trio.Event = field(default_factory=trio.Event)
    reader_done: trio.Event = field(default_factory=trio.Event)


@dataclass
class WorkerSlot:
    """Worker number K, across its restarts."""

    number: int
    current: Incarnation | None = None
    first_ready: trio.Event = field(default_factory=trio.Event)
    restarts: int = 0
    last_exit: str = ""
    revision: str = ""
    snapshot: Snapshot | None = None
    answered: int = 0  # the last `Scrape` seq it answered
    arrived: trio.Event = field(default_factory=trio.Event)  # replaced on each snapshot
    stopping: bool = False  # a reload lowered `workers` below this number

    def wake(self) -> None:
        self.arrived.set()
        self.arrived = trio.Event()


def worker_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in _NOT_INHERITED}


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait for the process without a thread: its pidfd turns readable when it exits."""
    pidfd = os.pidfd_open(process.pid)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return process.wait()


class WorkerSupervisor:
    def __init__(
        self,
        config_path: Path,
        config_text: str,
        listeners: Listeners,
        *,
        log_level: str = "WARNING",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = config_path
        self.config_text = config_text
        self.listeners = listeners
        self.log_level = log_level
        self.environ = worker_environ(os.environ if environ is None else environ)
        self.slots: dict[int, WorkerSlot] = {}
        self.retired: list[Family] = []
        self.draining = False
        self._drain_started = trio.Event()
        self._seq = 0
        self._nursery: trio.Nursery | None = None

    async def run(self, count: int, *, task_status: trio.TaskStatus[None]) -> None:
        """Serve until drained; started once every worker is ready."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for number in range(1, count + 1):
                self._add(number, strict=True)
            with trio.fail_after(START_TIMEOUT):
                async with trio.open_nursery() as waiting:
                    waiting.start_soon(self._all_ready, waiting.cancel_scope)
                    await self._drain_started.wait()  # a SIGTERM while starting ends it too
                    waiting.cancel_scope.cancel()
            task_status.started()

    async def _all_ready(self, done: trio.CancelScope) -> None:
        for slot in list(self.slots.values()):
            await slot.first_ready.wait()
        done.cancel()

    def live(self) -> list[WorkerSlot]:
        return [s for s in self.slots.values() if s.current is not None and s.current.ready]

    def _add(self, number: int, *, strict: bool) -> None:
        assert self._nursery is not None
        slot = self.slots[number] = WorkerSlot(number)
        self._nursery.start_soon(self._supervise, slot, strict)

    def _spawn(self, slot: WorkerSlot) -> Incarnation:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = os.memfd_create("sentinel-proxy-config", 0)  # close-on-exec unless passed
        try:
            os.write(config, self.config_text.encode())
            argv = [sys.executable, "-m", "sentinel_stack.proxy", "--config"]
            argv += [str(self.config_path), "--log-level", self.log_level]
            argv += ["--worker", str(slot.number), "--parent-pid", str(os.getpid())]
            argv += ["--channel-fd", str(theirs.fileno()), "--config-fd", str(config)]
            fds = [theirs.fileno(), config]
            for kind, socks in (("plain", self.listeners.plain), ("secure", self.listeners.secure)):
                for sock in socks:
                    argv += ["--listen-fd", f"{kind}:{sock.fileno()}"]
                    fds.append(sock.fileno())
            # Synchronous on purpose, from the main thread: see the module docstring.
            process = subprocess.Popen(argv, pass_fds=fds, env=self.environ)
        finally:
            theirs.close()
            os.close(config)
        ours.setblocking(False)
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        return Incarnation(process, WireChannel(stream, ToParent))

    async def _supervise(self, slot: WorkerSlot, strict: bool) -> None:
        backoff = BACKOFF_INITIAL
        while True:
            run = slot.current = self._spawn(slot)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, slot, run)
                try:
                    code = await wait_exit(run.process)
                except BaseException:  # cancelled by a failure elsewhere: no orphan
                    run.process.kill()
                    raise
                run.exited.set()
                with trio.move_on_after(1.0):  # its last words: the final snapshot
                    await run.reader_done.wait()
                nursery.cancel_scope.cancel()
            await run.channel.stream.aclose()
            slot.current = None
            slot.last_exit = describe_exit(code)
            if slot.snapshot is not None:
                self.retired = retire(self.retired, slot.snapshot.families)
                slot.snapshot = None
            slot.wake()
            if strict and not slot.first_ready.is_set() and not self.draining:
                raise WorkerStartFailed(
                    f"proxy worker {slot.number} (pid {run.process.pid}) {slot.last_exit} "
                    "before it was ready; its error is in the log above"
                )
            if self.draining or slot.stopping:
                return self._leave(slot)
            if time.time() - run.started > STABLE_AFTER:
                backoff = BACKOFF_INITIAL
            print(
                f"proxy worker {slot.number} (pid {run.process.pid}) {slot.last_exit}; "
                f"restarting in {backoff:g}s",
                file=sys.stderr,
                flush=True,
            )
            with trio.move_on_after(backoff):
                await self._drain_started.wait()
            if self.draining or slot.stopping:
                return self._leave(slot)
            backoff = min(backoff * 2, BACKOFF_MAX)
            slot.restarts += 1

    def _leave(self, slot: WorkerSlot) -> None:
        if not self.draining:  # a reload stopped it: gone for good (draining: still listed)
            self.slots.pop(slot.number, None)

    async def _read(self, slot: WorkerSlot, run: Incarnation) -> None:
        try:
            async for message in run.channel.messages():
                if isinstance(message, Ready):
                    run.ready = True
                    slot.first_ready.set()
                    if self.draining or slot.stopping:  # ready too late: drain at once
                        await self._tell(run, Drain())
                elif isinstance(message, Snapshot):
                    slot.snapshot = message
                    slot.revision = str(message.status.get("revision", ""))
                    slot.answered = max(slot.answered, message.seq)
                    slot.wake()
                elif isinstance(message, Reloaded):
                    slot.revision = message.revision
                    if message.error:
                        log.warning("worker %d refused the reload: %s", slot.number, message.error)
        except WireError as error:
            print(f"proxy worker {slot.number}: {error}; killing it", file=sys.stderr, flush=True)
            run.process.kill()
        finally:
            run.reader_done.set()

    @staticmethod
    async def _tell(run: Incarnation, message: Drain | Reload | Scrape) -> bool:
        try:
            await run.channel.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def scrape(self) -> list[WorkerSlot]:
        """Ask every ready worker for a fresh snapshot; wait (bounded) for the answers.

        A worker that does not answer in time keeps its previous snapshot."""
        self._seq += 1
        seq = self._seq
        asked = [s for s in self.live() if s.current and await self._tell(s.current, Scrape(seq))]
        with trio.move_on_after(SCRAPE_TIMEOUT):
            for slot in asked:
                while slot.current is not None and slot.answered < seq:
                    await slot.arrived.wait()
        return list(self.slots.values())

    def reload(self, text: str, count: int) -> None:
        """Every worker loads ``text``; workers are added or stopped to make ``count``."""
        self.config_text = text
        if self._nursery is None or self.draining:
            return
        for slot in self.slots.values():
            if slot.current is not None:
                self._nursery.start_soon(self._tell, slot.current, Reload(text))
        active = sorted(n for n, slot in self.slots.items() if not slot.stopping)
        for number in active[count:]:
            self._stop(self.slots[number])
        number = 1
        while len(active) < count:
            if number not in self.slots:
                self._add(number, strict=False)
                active.append(number)
            number += 1

    def drain(self) -> None:
        """Stop accepting (our copies of the listeners close), let workers finish, exit."""
        if self.draining:
            return
        self.draining = True
        self._drain_started.set()
        self.listeners.close()
        for slot in self.slots.values():
            self._stop(slot)

    def _stop(self, slot: WorkerSlot) -> None:
        slot.stopping = True
        if slot.current is not None and self._nursery is not None:
            self._nursery.start_soon(self._drain_one, slot.current)

    async def _drain_one(self, run: Incarnation) -> None:
        if not await self._tell(run, Drain()):
            with contextlib.suppress(ProcessLookupError):
                run.process.terminate()
        with trio.move_on_after(KILL_AFTER):
            await run.exited.wait()
            return
        log.warning("proxy worker pid %d still running after draining; killing it", run.process.pid)
        run.process.kill()
