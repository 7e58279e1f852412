"""The Generic Cell Rate Algorithm, as one pure function over integer nanoseconds.

GCRA keeps a single number per key, the *theoretical arrival time* (TAT): the instant at
which the key's bucket would be full again if nothing else arrived. A request costing ``c``
is admitted when pushing the TAT forward by ``c`` emission intervals keeps it no further
than ``burst`` intervals ahead of now. That one comparison gives both the sustained rate
(one interval per admitted unit) and the burst (how far ahead the TAT may run).

Integer nanoseconds, not float seconds: with floats, five additions of 0.1 s exceed 0.5 s
and a burst of 5 admits only 4. Integers make the admitted counts exact.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class GcraLimit:
    """A rate of ``rate`` units per ``period_ns`` with room for ``burst`` units at once.

    ``interval_ns`` is the emission interval (time one unit "costs"); ``tolerance_ns`` is
    how far the TAT may run ahead of now: ``burst`` intervals.
    """

    rate: float
    period_ns: int
    burst: int
    interval_ns: int
    tolerance_ns: int

    @classmethod
    def of(cls, rate: float, period_s: float, burst: int) -> GcraLimit:
        """Build a limit; raises ValueError when a figure cannot describe a limit."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if not period_s > 0:
            raise ValueError(f"period must be positive, got {period_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        period_ns = round(period_s * NS_PER_S)
        interval_ns = max(1, round(period_ns / rate))
        return cls(rate, period_ns, burst, interval_ns, interval_ns * burst)


@dataclass(frozen=True, slots=True)
class GcraOutcome:
    """What one GCRA step decided, all durations in nanoseconds from now.

    ``new_tat`` is the state to store (unchanged when the request is refused);
    ``retry_after_ns`` is 0 when admitted; ``reset_ns`` is the time until the bucket is
    full again given ``new_tat``; ``remaining`` counts whole units still admissible now.
    """

    allowed: bool
    new_tat: int
    retry_after_ns: int
    reset_ns: int
    remaining: int


def gcra_step(limit: GcraLimit, tat: int, now_ns: int, cost: int = 1) -> GcraOutcome:
    """Decide one request of ``cost`` units against the stored ``tat`` at ``now_ns``.

    A refused request leaves the TAT untouched, so a client hammering a closed bucket
    does not push its own reopening further away. A ``cost`` above ``burst`` can never be
    admitted; its ``retry_after_ns`` is then only the time until the bucket is full.
    """
    base = tat if tat > now_ns else now_ns
    candidate = base + limit.interval_ns * cost
    ahead = candidate - now_ns
    if ahead <= limit.tolerance_ns:
        remaining = (limit.tolerance_ns - ahead) // limit.interval_ns
        return GcraOutcome(True, candidate, 0, ahead, remaining)
    current_ahead = base - now_ns
    remaining = max(0, (limit.tolerance_ns - current_ahead) // limit.interval_ns)
    return GcraOutcome(False, tat, ahead - limit.tolerance_ns, current_ahead, remaining)


def is_idle(tat: int, now_ns: int) -> bool:
    """True when the stored TAT is indistinguishable from a fresh key (bucket full).

    Forgetting such a key changes no future decision, which is what makes it safe to evict.
    """
    return tat <= now_ns
