"""Whether each target of an upstream may take traffic: active checks plus passive ejection.

Two independent signals decide, and a target is available only when both agree:

- **Active checks** (the I/O layer probes every ``interval``): ``unhealthy_threshold``
  consecutive failed checks make a healthy target unhealthy, ``healthy_threshold``
  consecutive passed checks make it healthy again. Targets start healthy: the supervisor
  starts upstreams before the proxy, so a fresh proxy should serve at once rather than wait
  for a round of checks.
- **Passive ejection** (real traffic): ``consecutive_failures`` 5xx responses or transport
  errors in a row eject a target for ``base_ejection_time * times ejected`` (capped at
  ``max_ejection_time``), so a target that keeps failing stays out longer each time. The
  multiplier resets once a target has gone ``max_ejection_time`` without a new ejection.
  Ejection ends by time only: a passing active check does not cut it short, since a target
  can answer `/health` while failing real requests. At most ``max_ejection_percent`` of the
  targets are ejected at once, and never the last available one; if the other targets fail
  their checks later, ejected healthy targets serve again. A degraded upstream that still
  answers beats a 503 from the proxy.

Time is passed in as ``now`` (seconds, monotonic); nothing here reads a clock or a socket.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from sentinel_stack.proxy.balancing import Target, parse_target

if TYPE_CHECKING:
    from sentinel_stack.config.schema import HealthCheck, UpstreamConfig

__all__ = [
    "ActiveCheckPolicy",
    "ActiveState",
    "EjectionPolicy",
    "TargetHealth",
    "UpstreamHealth",
    "http_check_passed",
    "is_passive_failure",
]


T = TypeVar("T", bound=Hashable)


class ActiveState(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ActiveCheckPolicy:
    """How the I/O layer probes targets (``kind``, ``path``, timing) and how results count."""

    kind: Literal["http", "tcp", "none"] = "tcp"
    path: str = "/"
    interval: float = 5.0
    timeout: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3

    @classmethod
    def from_config(cls, config: HealthCheck) -> ActiveCheckPolicy:
        return cls(
            kind=config.kind,
            path=config.path,
            interval=config.interval,
            timeout=config.timeout,
            healthy_threshold=config.healthy_threshold,
            unhealthy_threshold=config.unhealthy_threshold,
        )


@dataclass(frozen=True, slots=True)
class EjectionPolicy:
    """Passive ejection settings (not in the config schema yet: these defaults apply)."""

    consecutive_failures: int = 5
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 50

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1:
            raise ValueError("consecutive_failures must be at least 1")
        if not 0 < self.base_ejection_time <= self.max_ejection_time:
            raise ValueError("need 0 < base_ejection_time <= max_ejection_time")
        if not 0 <= self.max_ejection_percent <= 100:
            raise ValueError("max_ejection_percent must be between 0 and 100")


def http_check_passed(status: int) -> bool:
    """An HTTP health check passes on 2xx and 3xx (a redirect still proves the app is up)."""
    return 200 <= status < 400


def is_passive_failure(status: int | None) -> bool:
    """Does this outcome count towards ejection? ``None`` means no response: connect error,
    reset or timeout before the response headers. 4xx is the client's fault, not the target's.
    """
    return status is None or status >= 500


@dataclass(frozen=True, slots=True)
class TargetHealth(Generic[T]):
    """One target's health for metrics, the TUI and the admin API."""

    target: T
    available: bool
    active: ActiveState
    ejected: bool
    ejected_until: float | None
    times_ejected: int
    consecutive_failures: int


class _TargetState:
    __slots__ = (
        "active",
        "check_streak",
        "consecutive_failures",
        "ejected",
        "ejected_until",
        "times_ejected",
    )

    def __init__(self) -> None:
        self.active = ActiveState.HEALTHY
        self.check_streak = 0  # consecutive check results contradicting `active`
        self.consecutive_failures = 0
        self.ejected = False
        self.ejected_until: float | None = None
        self.times_ejected = 0

    def expire(self, now: float) -> None:
        if self.ejected and self.ejected_until is not None and now >= self.ejected_until:
            self.ejected = False
            self.consecutive_failures = 0

    def usable(self) -> bool:
        return self.active is ActiveState.HEALTHY and not self.ejected


class UpstreamHealth(Generic[T]):
    """Health of one upstream's targets; feed it check and traffic results, ask who is up.

    Generic in the target type like `Balancer`; `from_config` gives `Target`s.
    """

    __slots__ = ("_active", "_ejection", "_states")

    def __init__(
        self,
        targets: Sequence[T],
        active: ActiveCheckPolicy | None = None,
        ejection: EjectionPolicy | None = None,
    ) -> None:
        if not targets:
            raise ValueError("an upstream needs at least one target")
        self._active = active or ActiveCheckPolicy()
        self._ejection = ejection or EjectionPolicy()
        self._states = {target: _TargetState() for target in targets}

    @staticmethod
    def from_config(
        config: UpstreamConfig, ejection: EjectionPolicy | None = None
    ) -> UpstreamHealth[Target]:
        return UpstreamHealth(
            [parse_target(t) for t in config.targets],
            ActiveCheckPolicy.from_config(config.health_check),
            ejection,
        )

    @property
    def active_policy(self) -> ActiveCheckPolicy:
        return self._active

    @property
    def ejection_policy(self) -> EjectionPolicy:
        return self._ejection

    def record_check(self, target: T, passed: bool, now: float) -> ActiveState | None:
        """One active check result; returns the new state when this result changed it."""
        state = self._states[target]
        state.expire(now)
        if passed == (state.active is ActiveState.HEALTHY):
            state.check_streak = 0
            return None
        state.check_streak += 1
        if passed:
            if state.check_streak < self._active.healthy_threshold:
                return None
            state.active = ActiveState.HEALTHY
            # It was down and the checks prove it is back: whatever ejected it (the errors
            # of the outage) is over too. A target ejected for 5xx while its checks kept
            # passing never makes this transition, so it serves out its ejection.
            state.ejected = False
            state.consecutive_failures = 0
        else:
            if state.check_streak < self._active.unhealthy_threshold:
                return None
            state.active = ActiveState.UNHEALTHY
        state.check_streak = 0
        return state.active

    def record_response(self, target: T, failed: bool, now: float) -> bool:
        """One request's outcome on *target* (see `is_passive_failure`); True if it ejected it.

        Results for a target that is already ejected (requests that were in flight) are
        ignored, so they neither lengthen nor end the ejection.
        """
        state = self._states[target]
        state.expire(now)
        if state.ejected:
            return False
        if not failed:
            state.consecutive_failures = 0
            return False
        state.consecutive_failures += 1
        if state.consecutive_failures < self._ejection.consecutive_failures:
            return False
        if not self._may_eject(target, now):
            return False
        policy = self._ejection
        if (
            state.ejected_until is not None
            and now - state.ejected_until >= policy.max_ejection_time
        ):
            state.times_ejected = 0
        state.times_ejected += 1
        duration = min(policy.base_ejection_time * state.times_ejected, policy.max_ejection_time)
        state.ejected = True
        state.ejected_until = now + duration
        return True

    def _may_eject(self, target: T, now: float) -> bool:
        ejected = 0
        others_usable = False
        for other, state in self._states.items():
            state.expire(now)
            ejected += state.ejected
            others_usable = others_usable or (other != target and state.usable())
        allowed = len(self._states) * self._ejection.max_ejection_percent // 100
        return others_usable and ejected + 1 <= allowed

    def is_available(self, target: T, now: float) -> bool:
        return target in self.available(now)

    def available(self, now: float) -> frozenset[T]:
        """The targets that may take a request now: actively healthy and not ejected.

        If that leaves none while some healthy targets are ejected (the others failed their
        checks after the ejection), the ejected ones are returned: ejection reflects recent
        errors, not reachability, and is never a reason to have no target at all.
        """
        healthy = []
        usable = []
        for target, state in self._states.items():
            state.expire(now)
            if state.active is ActiveState.HEALTHY:
                healthy.append(target)
                if not state.ejected:
                    usable.append(target)
        return frozenset(usable or healthy)

    def snapshot(self, now: float) -> tuple[TargetHealth[T], ...]:
        available = self.available(now)
        out = []
        for target, state in self._states.items():
            state.expire(now)
            out.append(
                TargetHealth(
                    target=target,
                    available=target in available,
                    active=state.active,
                    ejected=state.ejected,
                    ejected_until=state.ejected_until if state.ejected else None,
                    times_ejected=state.times_ejected,
                    consecutive_failures=state.consecutive_failures,
                )
            )
        return tuple(out)
