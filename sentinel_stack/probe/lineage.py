"""Process lineage: who started whom, kept from fork/exec/exit events and seeded from /proc.

A process's identity is (pid, start time): pids are reused, start times are not. The table
holds one record per live pid (plus the recently exited, for a grace period, so events that
arrive after an exit and children that outlive their parent still resolve) and answers
"what is this process and what are its ancestors". Pure: callers pass time in.

Start times are compared with one clock tick of slack because a fork record's child start
is taken from the record's timestamp, microseconds after the kernel's own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.procfs import ProcessSnapshot

__all__ = ["LineageTable", "ProcessRecord"]

TICK_SLACK = 1


@dataclass(slots=True)
class ProcessRecord:
    pid: int
    start_ticks: int | None
    ppid: int | None
    comm: str
    exe: str | None = None
    argv: list[str] | None = None
    uid: int | None = None
    cgroup_path: str | None = None
    exited_at: float | None = None
    # (table generation, ancestors): reused until a fork, exec or exit changes the table.
    cached_lineage: tuple[int, list[ev.Ancestor]] | None = None

    def same_process(self, start_ticks: int | None) -> bool:
        if start_ticks is None or self.start_ticks is None:
            return True
        return abs(self.start_ticks - start_ticks) <= TICK_SLACK


class LineageTable:
    """pid -> the current incarnation of that pid, with enough to walk up the tree."""

    def __init__(self, max_depth: int = 8, linger: float = 30.0, max_size: int = 65536) -> None:
        self.max_depth = max_depth
        self.linger = linger
        self.max_size = max_size
        self._by_pid: dict[int, ProcessRecord] = {}
        self._generation = 0
        self._exited: deque[tuple[float, int]] = deque()

    def __len__(self) -> int:
        return len(self._by_pid)

    def seed(self, snapshots: Iterable[ProcessSnapshot]) -> None:
        """Load what /proc shows; records learnt from events since are kept over the seed."""
        for snap in snapshots:
            current = self._by_pid.get(snap.pid)
            if current is not None and current.same_process(snap.start_ticks):
                continue
            self._insert(
                ProcessRecord(
                    pid=snap.pid,
                    start_ticks=snap.start_ticks,
                    ppid=snap.ppid,
                    comm=snap.comm,
                    exe=snap.exe,
                    argv=snap.argv,
                    uid=snap.uid,
                    cgroup_path=snap.cgroup_path,
                )
            )

    def lookup(self, pid: int, start_ticks: int | None = None) -> ProcessRecord | None:
        record = self._by_pid.get(pid)
        if record is None or not record.same_process(start_ticks):
            return None
        return record

    def ancestors(self, ppid: int | None, child_start: int | None) -> list[ev.Ancestor]:
        """Parent first. Stops at pid 0, a loop, an unknown pid, or a parent started after
        its child (the pid was reused: the real parent is gone)."""
        chain: list[ev.Ancestor] = []
        seen: set[int] = set()
        pid, start = ppid, child_start
        while pid and pid not in seen and len(chain) < self.max_depth:
            seen.add(pid)
            record = self._by_pid.get(pid)
            if record is None:
                break
            if (
                start is not None
                and record.start_ticks is not None
                and record.start_ticks > start + TICK_SLACK
            ):
                break
            chain.append(ev.Ancestor(pid=record.pid, comm=record.comm, exe=record.exe))
            pid, start = record.ppid, record.start_ticks
        return chain

    def apply(self, event: ev.KernelEvent, now: float) -> None:
        """Learn from an event (fork, exec, exit, or any event of an unknown process) and
        fill its process fields (exe, argv, lineage...) from the table. This runs for every
        event, so the common case (an event of a known process) is kept short."""
        kind = type(event)
        if kind is ev.ForkEvent:
            self._generation += 1
            parent = self._by_pid.get(event.ppid or 0)
            self._insert(
                ProcessRecord(
                    pid=event.pid,
                    start_ticks=event.start_ticks,
                    ppid=event.ppid,
                    comm=event.comm,
                    exe=parent.exe if parent else None,
                    argv=parent.argv if parent else None,
                    uid=event.uid,
                    cgroup_path=event.cgroup_path,
                )
            )
        elif kind is ev.ExecEvent:
            self._generation += 1
            execed = self._current(event)
            execed.comm, execed.exe, execed.argv = event.comm, event.exe, event.argv
            execed.ppid = event.ppid if event.ppid is not None else execed.ppid
            execed.uid = event.uid
        elif kind is ev.ExitEvent:
            self._generation += 1
        record: ProcessRecord | None = self._by_pid.get(event.pid)
        if kind is not ev.TcpStateEvent and (
            record is None or not record.same_process(event.start_ticks)
        ):
            # (TCP state changes happen in softirq context and carry only the owner's pid.)
            record = self._current(event)
        if record is not None:
            if event.exe is None:
                event.exe = record.exe
            if event.argv is None:
                event.argv = record.argv
            if event.ppid is None:
                event.ppid = record.ppid
            if not event.comm:
                event.comm = record.comm
            if event.cgroup_path is None:
                event.cgroup_path = record.cgroup_path
            if event.start_ticks is None:
                event.start_ticks = record.start_ticks
            if record.ppid == event.ppid:
                cached = record.cached_lineage
                if cached is None or cached[0] != self._generation:
                    cached = (self._generation, self.ancestors(event.ppid, event.start_ticks))
                    record.cached_lineage = cached
                event.lineage = list(cached[1])
            else:
                event.lineage = self.ancestors(event.ppid, event.start_ticks)
            if kind is ev.ExitEvent:
                record.exited_at = now
                self._exited.append((now, event.pid))
        else:
            event.lineage = self.ancestors(event.ppid, event.start_ticks)

    def _current(self, event: ev.KernelEvent) -> ProcessRecord:
        record = self._by_pid.get(event.pid)
        if record is None or not record.same_process(event.start_ticks):
            record = ProcessRecord(
                pid=event.pid,
                start_ticks=event.start_ticks,
                ppid=event.ppid,
                comm=event.comm,
                uid=event.uid,
                cgroup_path=event.cgroup_path,
            )
            self._insert(record)
        return record

    def _insert(self, record: ProcessRecord) -> None:
        if len(self._by_pid) >= self.max_size and record.pid not in self._by_pid:
            # Full: forget the oldest exited record (or, failing that, any record).
            victim = self._exited.popleft()[1] if self._exited else next(iter(self._by_pid))
            self._by_pid.pop(victim, None)
        self._by_pid[record.pid] = record

    def expire(self, now: float) -> int:
        """Forget processes that exited more than `linger` seconds ago; returns how many."""
        removed = 0
        while self._exited and self._exited[0][0] <= now - self.linger:
            _, pid = self._exited.popleft()
            record = self._by_pid.get(pid)
            if (
                record is not None
                and record.exited_at is not None
                and (record.exited_at <= now - self.linger)
            ):
                del self._by_pid[pid]
                removed += 1
        return removed
