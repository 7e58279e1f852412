"""A circuit breaker: stop calling a dependency that keeps failing, then probe it carefully.

Used alike for agents (a dead WAF must not add its timeout to every request) and upstreams.

The trip condition is *N consecutive failures*, not a failure ratio over a window. It needs no
window, no minimum call volume and no clock while closed, it trips quickly on the failures that
matter here (a dead socket, a hung agent: every call fails), and its behaviour is easy to
predict and test. A dependency that fails half its calls at random keeps the breaker closed;
passive ejection (`health.py`) and the agent's own failure mode handle that case.

States:

- closed: every call is allowed; ``failure_threshold`` consecutive failures open the breaker.
- open: no call is allowed until ``recovery_timeout`` seconds after opening; then half-open.
- half-open: at most ``half_open_max_calls`` probe calls may be in flight at once;
  ``success_threshold`` probe successes close the breaker; any probe failure re-opens it.
  A probe that reports nothing for ``recovery_timeout`` while every slot is taken counts as
  a failure, so a lost result can never wedge the breaker half-open.

Time is passed in (``now``, seconds on any monotonic clock); nothing here reads a clock.
Results that arrive while the breaker is open (calls allowed before it opened) are counted in
the totals but do not change the state; results that arrive while half-open are taken as
probe results, whenever their call started.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["BreakerPolicy", "BreakerSnapshot", "BreakerState", "CircuitBreaker"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to open, how long to wait, how to probe. The defaults suit a local agent socket."""

    failure_threshold: int = 5
    recovery_timeout: float = 5.0
    half_open_max_calls: int = 1
    success_threshold: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.recovery_timeout <= 0:
            raise ValueError("recovery_timeout must be positive")
        if self.half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        if self.success_threshold < 1:
            raise ValueError("success_threshold must be at least 1")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """State and counters for metrics and the TUI; totals only ever grow."""

    state: BreakerState
    consecutive_failures: int
    probes_in_flight: int
    probe_successes: int
    successes: int
    failures: int
    rejected: int
    times_opened: int
    changed_at: float | None


class CircuitBreaker:
    """One breaker for one dependency. Call `allow` before a call and `record` after it."""

    __slots__ = (
        "_changed_at",
        "_consecutive_failures",
        "_failures",
        "_last_probe_at",
        "_policy",
        "_probe_successes",
        "_probes",
        "_rejected",
        "_state",
        "_successes",
        "_times_opened",
    )

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self._policy = policy or BreakerPolicy()
        self._state = BreakerState.CLOSED
        self._changed_at: float | None = None
        self._consecutive_failures = 0
        self._probes = 0
        self._probe_successes = 0
        self._last_probe_at = 0.0
        self._successes = 0
        self._failures = 0
        self._rejected = 0
        self._times_opened = 0

    @property
    def policy(self) -> BreakerPolicy:
        return self._policy

    def state(self, now: float) -> BreakerState:
        """The state at *now*; an open breaker whose timeout has passed reads as half-open."""
        self._advance(now)
        return self._state

    def allow(self, now: float) -> bool:
        """May a call start now? A True in half-open takes a probe slot until `record`."""
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.HALF_OPEN:
            if self._probes < self._policy.half_open_max_calls:
                self._probes += 1
                self._last_probe_at = now
                return True
            if now - self._last_probe_at >= self._policy.recovery_timeout:
                # Every slot is held by a probe that never reported: treat that as failure.
                self._open(now)
        self._rejected += 1
        return False

    def record(self, success: bool, now: float) -> BreakerState:
        """The outcome of an allowed call; returns the state after it."""
        self._advance(now)
        if success:
            self._successes += 1
        else:
            self._failures += 1
        if self._state is BreakerState.CLOSED:
            if success:
                self._consecutive_failures = 0
            else:
                self._consecutive_failures += 1
                if self._consecutive_failures >= self._policy.failure_threshold:
                    self._open(now)
        elif self._state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if not success:
                self._open(now)
            else:
                self._probe_successes += 1
                if self._probe_successes >= self._policy.success_threshold:
                    self._close(now)
        return self._state

    def release(self, now: float) -> None:
        """An allowed call ended without an outcome (cancelled): free its probe slot, if any."""
        self._advance(now)
        if self._state is BreakerState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def snapshot(self, now: float) -> BreakerSnapshot:
        self._advance(now)
        return BreakerSnapshot(
            state=self._state,
            consecutive_failures=self._consecutive_failures,
            probes_in_flight=self._probes,
            probe_successes=self._probe_successes,
            successes=self._successes,
            failures=self._failures,
            rejected=self._rejected,
            times_opened=self._times_opened,
            changed_at=self._changed_at,
        )

    def _advance(self, now: float) -> None:
        if self._state is BreakerState.OPEN and self._changed_at is not None:
            reopen_at = self._changed_at + self._policy.recovery_timeout
            if now >= reopen_at:
                self._state = BreakerState.HALF_OPEN
                self._changed_at = reopen_at
                self._probes = 0
                self._probe_successes = 0

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._changed_at = now
        self._times_opened += 1
        self._probes = 0
        self._probe_successes = 0

    def _close(self, now: float) -> None:
        self._state = BreakerState.CLOSED
        self._changed_at = now
        self._consecutive_failures = 0
        self._probes = 0
        self._probe_successes = 0
