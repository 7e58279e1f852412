"""Which process serves which upstream: the piece threat chains start from.

Two sources, because neither alone is enough:

- The stack's process table (`status` of the control API, then supervisor `state` events,
  as the detector's `StackView` keeps it):
  an `[upstreams.NAME]` with ``process = "demo"`` is served by the child ``demo``, whose pid
  the supervisor knows for certain. Its descendants are found through each kernel event's
  lineage. This is authoritative but says nothing of which of its processes answered.
- `kernel.accept` on one of the upstream's target ports: the process that accepts the
  proxy's connection is the one serving (a pre-forked worker, or an upstream the stack does
  not run). Such a binding ends with the process (`kernel.exit`), so a reused pid never
  inherits it.

A process that is either is a *server* of its upstream; anything below a server is a
*descendant*. Servers handle many requests, so a chain never adopts a server pid: only
descendants (the shell a web shell started) are followed for the chain's lifetime. Pure:
no clock, no sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sentinel_stack.detect.context import StackView
from sentinel_stack.probe import events as ev

__all__ = ["ServerMatch", "UpstreamDirectory", "UpstreamInfo", "upstreams_from_config"]

# Supervisor states in which the child's pid is its live process.
_LIVE_STATES = frozenset({"starting", "running", "stopping"})


@dataclass(frozen=True, slots=True)
class UpstreamInfo:
    """What the config says of one upstream: its target ports and its stack process."""

    name: str
    ports: tuple[int, ...] = ()
    process: str | None = None


@dataclass(frozen=True, slots=True)
class ServerMatch:
    """An event's process belongs to ``upstream``: ``server_pid`` serves it, and ``path`` is
    the pids from the event's process up to (not including) the server, nearest first."""

    upstream: str
    server_pid: int
    path: tuple[int, ...]

    @property
    def is_server(self) -> bool:
        return not self.path


def upstreams_from_config(upstreams: Mapping[str, object]) -> list[UpstreamInfo]:
    """`UpstreamInfo` from the config's ``[upstreams.*]`` (objects with ``targets`` and
    ``process``); targets without a parsable port contribute no port."""
    found: list[UpstreamInfo] = []
    for name, upstream in upstreams.items():
        ports: list[int] = []
        for target in getattr(upstream, "targets", ()):
            _, _, port = str(target).rpartition(":")
            if port.isdigit():
                ports.append(int(port))
        found.append(UpstreamInfo(name, tuple(ports), getattr(upstream, "process", None)))
    return found


class UpstreamDirectory:
    def __init__(
        self,
        upstreams: Iterable[UpstreamInfo] = (),
        stack: StackView | None = None,
        max_accepted: int = 4096,
    ) -> None:
        """``stack``: the detector's shared view of the process table (kept by the service
        and the rules engine); without one, `seed` and `on_state` keep a table here."""
        self.max_accepted = max_accepted
        self.stack = stack
        self._by_port: dict[int, str] = {}
        self._by_process: dict[str, str] = {}
        # pid -> upstream, from the process table (the child's own pid) ...
        self._supervised: dict[int, str] = {}
        self._child_pid: dict[str, int] = {}
        # ... and from accept events (pid -> upstream), bounded, dropped at exit.
        self._accepted: dict[int, str] = {}
        for info in upstreams:
            for port in info.ports:
                self._by_port.setdefault(port, info.name)
            if info.process:
                self._by_process[info.process] = info.name

    def _supervising(self, pid: int) -> str | None:
        if self.stack is not None:
            child = self.stack.pids.get(pid)
            return self._by_process.get(child) if child is not None else None
        return self._supervised.get(pid)

    def seed(self, children: Iterable[tuple[str, int | None, str]]) -> None:
        """(child name, pid, state) rows of the stack's process table (`status`)."""
        for name, pid, state in children:
            self.on_state(name, pid, state)

    def on_state(self, child: str, pid: int | None, state: str) -> None:
        """A supervisor state change: the child's pid serves its upstream while it lives."""
        upstream = self._by_process.get(child)
        if upstream is None or self.stack is not None:
            return
        old = self._child_pid.pop(child, None)
        if old is not None:
            self._supervised.pop(old, None)
        if pid and state in _LIVE_STATES:
            self._child_pid[child] = pid
            self._supervised[pid] = upstream

    def on_accept(self, event: ev.AcceptEvent) -> str | None:
        """Bind the accepting process to the upstream whose port it accepted on."""
        if event.local is None:
            return None
        upstream = self._by_port.get(event.local.port)
        if upstream is None:
            return None
        if len(self._accepted) >= self.max_accepted and event.pid not in self._accepted:
            self._accepted.pop(next(iter(self._accepted)))
        self._accepted[event.pid] = upstream
        return upstream

    def on_exit(self, pid: int) -> None:
        self._accepted.pop(pid, None)

    def match(self, pid: int, lineage: Iterable[int]) -> ServerMatch | None:
        """The upstream a process serves or descends from; the nearest server wins."""
        path: list[int] = []
        for candidate in (pid, *lineage):
            upstream = self._supervising(candidate) or self._accepted.get(candidate)
            if upstream is not None:
                return ServerMatch(upstream, candidate, tuple(path))
            path.append(candidate)
        return None

    def is_server(self, pid: int) -> bool:
        return pid in self._accepted or self._supervising(pid) is not None
