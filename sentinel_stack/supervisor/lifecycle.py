"""The life of one supervised child as a pure state machine (no processes, no clocks).

The Trio runner feeds it what happened (spawned, ready, exited, ...) with the current
time and carries out what it answers. Every legal move is in `TRANSITIONS`; anything
else raises `IllegalTransition`, so a supervisor bug shows up as an error, not as a
child stuck in a state nobody expected.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Literal


class State(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING, State.FATAL}),
    State.STARTING: frozenset(
        {State.RUNNING, State.STOPPING, State.BACKOFF, State.EXITED, State.FATAL}
    ),
    State.RUNNING: frozenset({State.STOPPING, State.BACKOFF, State.EXITED, State.FATAL}),
    State.BACKOFF: frozenset({State.STARTING, State.STOPPED}),
    State.STOPPING: frozenset({State.STOPPED}),
    State.EXITED: frozenset({State.STARTING}),
    State.FATAL: frozenset({State.STARTING}),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class RestartPolicy:
    mode: Literal["always", "on-failure", "never"] = "on-failure"
    initial: float = 0.25
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    stable_after: float = 10.0
    max_restarts: int = 5
    window: float = 60.0

    def delay(self, attempt: int, random: float) -> float:
        """Backoff before restart number ``attempt`` (0-based); ``random`` is in [0, 1)."""
        base = min(self.maximum, self.initial * self.multiplier**attempt)
        return max(0.0, base * (1.0 + self.jitter * (2.0 * random - 1.0)))


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: ``code`` for a normal exit, ``signal`` when killed."""

    code: int | None = None
    signal: int | None = None
    reason: str = ""

    @property
    def success(self) -> bool:
        return self.code == 0

    def __str__(self) -> str:
        import signal as signals

        if self.signal is not None:
            try:
                text = f"killed by {signals.Signals(self.signal).name}"
            except ValueError:
                text = f"killed by signal {self.signal}"
        else:
            text = f"exit code {self.code}"
        return f"{text} ({self.reason})" if self.reason else text


@dataclass(frozen=True)
class Restart:
    """Answer to an exit: restart after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Settle:
    """Answer to an exit: stay in ``state`` (stopped, exited or fatal) — ``why`` says why."""

    state: State
    why: str


@dataclass
class Lifecycle:
    """State and restart bookkeeping for one child."""

    policy: RestartPolicy
    state: State = State.STOPPED
    attempt: int = 0
    restarts: int = 0
    ready_at: float | None = None
    started_at: float | None = None
    last_exit: ExitStatus | None = None
    reason: str = ""
    _recent: deque[float] = field(default_factory=deque)

    def _move(self, target: State) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state} -> {target}")
        self.state = target

    def start(self, now: float) -> None:
        """A start was asked for (first start, restart after backoff, or manual start)."""
        self._move(State.STARTING)
        self.started_at = now
        self.ready_at = None
        self.reason = ""

    def forget_restarts(self) -> None:
        """A person asked for a start: past crashes no longer count toward giving up."""
        self.attempt = 0
        self._recent.clear()

    def ready(self, now: float) -> None:
        self._move(State.RUNNING)
        self.ready_at = now

    def stop(self) -> bool:
        """A stop was asked for. Returns True when there is a process to signal."""
        if self.state in (State.STARTING, State.RUNNING):
            self._move(State.STOPPING)
            return True
        if self.state is State.BACKOFF:
            self._move(State.STOPPED)
        return False

    def fail(self, why: str) -> None:
        """Give up without a process to wait for (e.g. a dependency is fatal)."""
        self._move(State.FATAL)
        self.reason = why

    def exited(self, now: float, status: ExitStatus, random: float) -> Restart | Settle:
        """The process ended; decide between restarting and settling."""
        self.last_exit = status
        if self.state is State.STOPPING:
            self._move(State.STOPPED)
            return Settle(State.STOPPED, "stopped on request")
        if self.ready_at is not None and now - self.ready_at >= self.policy.stable_after:
            self.attempt = 0  # it ran long enough to count as healthy again
        wanted = self.policy.mode == "always" or (
            self.policy.mode == "on-failure" and not status.success
        )
        if not wanted:
            self._move(State.EXITED)
            self.reason = f"{status}; restart policy {self.policy.mode}"
            return Settle(State.EXITED, self.reason)
        while self._recent and now - self._recent[0] > self.policy.window:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            self._move(State.FATAL)
            self.reason = (
                f"{status}; gave up after {len(self._recent)} restarts in {self.policy.window:g}s"
            )
            return Settle(State.FATAL, self.reason)
        self._move(State.BACKOFF)
        delay = self.policy.delay(self.attempt, random)
        self.attempt += 1
        self.restarts += 1
        self._recent.append(now)
        self.reason = f"{status}; restarting in {delay:.2f}s"
        return Restart(delay)
