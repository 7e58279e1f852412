"""The degraded backend: polling /proc (and psutil for sockets) when eBPF is not available.

It sees what is still there at each poll: processes that started (reported as exec, with
their current argv) or vanished (exit, code unknown), new inet connections, and open file
descriptors on sensitive or watched paths. It cannot see anything shorter than the poll
interval, failed attempts (no results), path traversal (/proc shows resolved paths), or
privilege changes. It says so: the status is degraded with the reason eBPF was not used,
and every event carries ``backend: "procfs"``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
import trio

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.backend import BackendStatus, EventSink
from sentinel_stack.probe.config import PathPattern
from sentinel_stack.probe.procfs import PROC, ProcessSnapshot, snapshot_processes
from sentinel_stack.probe.records import open_flag_names
from sentinel_stack.probe.scope import ScopeFilter, descendants

__all__ = ["ProcfsBackend", "ProcfsPoller"]

log = logging.getLogger("sentinel_stack.probe.procfs")

PROGRAMS = ["exec", "exit", "connect", "accept", "open"]
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000

ProcessKey = tuple[int, int]  # pid, start ticks


def in_scope(scope: ScopeFilter, processes: Sequence[ProcessSnapshot]) -> set[int]:
    """The pids of `processes` the scope covers (never the probe or its children)."""
    excluded = {scope.probe_pid} | {p.pid for p in processes if p.ppid == scope.probe_pid}
    if scope.mode == "host":
        pids = {p.pid for p in processes}
    elif scope.mode == "tree" and scope.root_pid is not None:
        pids = descendants(scope.root_pid, {p.pid: p.ppid for p in processes})
    else:
        prefix = scope.cgroup_relpath
        pids = {
            p.pid
            for p in processes
            if p.cgroup_path is not None
            and (p.cgroup_path == prefix or p.cgroup_path.startswith(prefix + "/"))
        }
    return pids - excluded


class ProcfsPoller:
    """Diffs successive views of /proc; `poll` returns the events since the last call."""

    def __init__(
        self,
        scope: ScopeFilter,
        sensitive: Sequence[PathPattern],
        watched: Sequence[PathPattern],
        source: str,
        snapshot: Callable[[], list[ProcessSnapshot]] = snapshot_processes,
        proc: Path = PROC,
    ) -> None:
        self.scope = scope
        self.sensitive = tuple(sensitive)
        self.watched = tuple(watched)
        self.source = source
        self.snapshot = snapshot
        self.proc = proc
        self._processes: dict[ProcessKey, ProcessSnapshot] = {}
        self._connections: set[tuple[int, str, int, str, int]] = set()
        self._files: set[tuple[int, int, str]] = set()
        self._primed = False

    def poll(self, now: float | None = None) -> list[ev.KernelEvent]:
        stamp = time.time() if now is None else now
        processes = self.snapshot()
        scoped = in_scope(self.scope, processes)
        current = {(p.pid, p.start_ticks): p for p in processes if p.pid in scoped}
        found: list[ev.KernelEvent] = []
        if self._primed:
            for key, snap in current.items():
                if key not in self._processes:
                    found.append(self._event(ev.ExecEvent, snap, stamp, filename=snap.exe or ""))
            for key, snap in self._processes.items():
                if key not in current:
                    found.append(self._event(ev.ExitEvent, snap, stamp))
        found += self._poll_connections(current, stamp)
        found += self._poll_files(current, stamp)
        self._processes = current
        self._primed = True
        return found

    def _event(
        self,
        cls: type[ev.KernelEvent],
        snap: ProcessSnapshot,
        stamp: float,
        **fields: object,
    ) -> ev.KernelEvent:
        return cls(
            time=stamp,
            source=self.source,
            backend="procfs",
            pid=snap.pid,
            ppid=snap.ppid,
            comm=snap.comm,
            exe=snap.exe,
            argv=snap.argv,
            uid=snap.uid,
            euid=snap.euid,
            gid=snap.gid,
            cgroup_path=snap.cgroup_path,
            start_ticks=snap.start_ticks,
            **fields,  # type: ignore[arg-type]
        )

    def _poll_connections(
        self, current: dict[ProcessKey, ProcessSnapshot], stamp: float
    ) -> list[ev.KernelEvent]:
        by_pid = {snap.pid: snap for snap in current.values()}
        try:
            connections = psutil.net_connections(kind="inet")
        except (psutil.Error, OSError):
            return []
        listening = {
            (c.pid, bound.port)
            for c in connections
            if c.status == psutil.CONN_LISTEN and (bound := _endpoint(c.laddr)) is not None
        }
        seen: set[tuple[int, str, int, str, int]] = set()
        found: list[ev.KernelEvent] = []
        for conn in connections:
            local, remote = _endpoint(conn.laddr), _endpoint(conn.raddr)
            if conn.pid is None or conn.pid not in by_pid or local is None or remote is None:
                continue
            key = (conn.pid, local.address, local.port, remote.address, remote.port)
            seen.add(key)
            if key in self._connections or not self._primed:
                continue
            accepted = (conn.pid, local.port) in listening
            fields: dict[str, object] = {
                "fd": conn.fd if conn.fd >= 0 else None,
                "family": _family(conn.family),
                "protocol": "tcp" if conn.type == 1 else "udp",
                "local": local,
                "remote": remote,
            }
            cls = ev.AcceptEvent if accepted else ev.ConnectEvent
            found.append(self._event(cls, by_pid[conn.pid], stamp, **fields))
        self._connections = seen
        return found

    def _poll_files(
        self, current: dict[ProcessKey, ProcessSnapshot], stamp: float
    ) -> list[ev.KernelEvent]:
        seen: set[tuple[int, int, str]] = set()
        found: list[ev.KernelEvent] = []
        for snap in current.values():
            fd_dir = self.proc / str(snap.pid) / "fd"
            try:
                fds = list(fd_dir.iterdir())
            except OSError:
                continue
            for entry in fds:
                try:
                    target = str(entry.readlink())
                except OSError:
                    continue
                if not target.startswith("/"):
                    continue  # sockets, pipes, anonymous inodes
                sensitive = any(p.matches(target) for p in self.sensitive)
                watched = any(p.matches(target) for p in self.watched)
                if not (sensitive or watched):
                    continue
                fd = int(entry.name)
                key = (snap.pid, fd, target)
                seen.add(key)
                if key in self._files or not self._primed:
                    continue
                flags = _fd_flags(self.proc / str(snap.pid) / "fdinfo" / entry.name)
                reasons = ["sensitive"] if sensitive else []
                if watched and flags is not None and flags & _WRITE_FLAGS:
                    reasons.append("watched_write")
                if not reasons:
                    continue
                found.append(
                    self._event(
                        ev.OpenEvent,
                        snap,
                        stamp,
                        path=target,
                        flags=flags,
                        flag_names=open_flag_names(flags) if flags is not None else [],
                        reasons=reasons,
                        result=fd,
                    )
                )
        self._files = seen
        return found


def _endpoint(address: object) -> ev.Endpoint | None:
    """psutil gives an (ip, port) named tuple, or () when there is no address."""
    ip, port = getattr(address, "ip", None), getattr(address, "port", None)
    return ev.Endpoint(ip, port) if isinstance(ip, str) and isinstance(port, int) else None


def _family(value: int) -> str:
    return "inet6" if value == 10 else "inet"


def _fd_flags(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


class ProcfsBackend:
    def __init__(self, poller: ProcfsPoller, reason: str, interval: float = 0.5) -> None:
        self.poller = poller
        self.interval = interval
        self.status = BackendStatus(
            name="procfs", degraded=True, reason=reason, programs=list(PROGRAMS)
        )

    async def run(
        self, sink: EventSink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        log.warning("DEGRADED: using the procfs fallback, not eBPF: %s", self.status.reason)
        await trio.to_thread.run_sync(self.poller.poll)  # the baseline: no events
        self.status.ready = True
        self.status.programs_attached = len(PROGRAMS)
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                events = await trio.to_thread.run_sync(self.poller.poll)
                if events:
                    sink.submit(events)
        finally:
            self.status.ready = False
