"""Whether a failed upstream attempt may be tried again, and after how long.

A retry must never make the upstream do something twice that the client asked for once. So:

- A **connect error** (nothing reached the upstream: refused, unreachable, connect timeout)
  may be retried for any method, like nginx does: no byte of the request was sent.
- A **reset before response headers** (the upstream may have seen and acted on the request)
  and a **status** listed in ``retry_on_status`` (502/503 when configured; none by default)
  may be retried only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE).
- In every case the body must be replayable: no body bytes were sent upstream yet, or the
  body was buffered whole (a route with ``inspect_body``).
- Attempts stop at ``max_attempts`` (``retries + 1``) and when the backoff would overrun the
  request's deadline.

The backoff is "full jitter" exponential: a uniform draw in ``[0, min(max, base * 2^(n-1))]``
after the n-th failed attempt, which spreads retries of many clients over time instead of
synchronising them. Randomness is injected. `RetryBudget` bounds retries across requests so
that a struggling upstream is not hit by a retry storm on top of its normal load.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sentinel_stack.proxy.balancing import RandomSource

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sentinel_stack.config.schema import UpstreamConfig

__all__ = [
    "IDEMPOTENT_METHODS",
    "AttemptFailure",
    "GiveUp",
    "GiveUpReason",
    "Retry",
    "RetryBudget",
    "RetryPolicy",
    "backoff_delay",
    "decide_retry",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class AttemptFailure(enum.StrEnum):
    """How an attempt failed, as far as retrying is concerned."""

    CONNECT_ERROR = "connect_error"
    RESET_BEFORE_HEADERS = "reset_before_headers"
    STATUS = "status"


class GiveUpReason(enum.StrEnum):
    NOT_RETRYABLE = "failure is not retryable"
    NON_IDEMPOTENT = "method is not idempotent"
    BODY_NOT_REPLAYABLE = "body was streamed upstream and not buffered"
    ATTEMPTS_EXHAUSTED = "no attempts left"
    DEADLINE = "backoff would overrun the request deadline"


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again (preferably on another target) after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Answer the client with the last failure."""

    reason: GiveUpReason


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 2
    retry_on_status: frozenset[int] = frozenset()
    backoff_base: float = 0.025
    backoff_max: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (the first try)")
        if not 0 <= self.backoff_base <= self.backoff_max:
            raise ValueError("need 0 <= backoff_base <= backoff_max")
        if any(not 500 <= status <= 599 for status in self.retry_on_status):
            raise ValueError("retry_on_status takes 5xx statuses only (e.g. 502, 503)")

    @classmethod
    def from_config(
        cls, config: UpstreamConfig, retry_on_status: Iterable[int] = ()
    ) -> RetryPolicy:
        """``retries`` comes from the config; retryable statuses are not in the schema yet."""
        return cls(max_attempts=config.retries + 1, retry_on_status=frozenset(retry_on_status))


def backoff_delay(policy: RetryPolicy, attempts_made: int, rng: RandomSource) -> float:
    """Full-jitter delay after *attempts_made* (≥ 1) failed attempts."""
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** max(0, attempts_made - 1))
    return rng.random() * ceiling


def decide_retry(
    policy: RetryPolicy,
    *,
    method: str,
    failure: AttemptFailure,
    status: int | None = None,
    attempts_made: int,
    body_sent: bool,
    body_buffered: bool,
    rng: RandomSource,
    now: float,
    deadline: float | None = None,
) -> Retry | GiveUp:
    """Retry or give up after a failed attempt.

    *status* is the response status for `AttemptFailure.STATUS`. *attempts_made* counts the
    attempts so far, this one included. *body_sent*: any request body byte went upstream.
    *deadline*: when the whole request times out (same clock as *now*), if it does.
    """
    if failure is AttemptFailure.STATUS and status not in policy.retry_on_status:
        return GiveUp(GiveUpReason.NOT_RETRYABLE)
    if failure is not AttemptFailure.CONNECT_ERROR and method.upper() not in IDEMPOTENT_METHODS:
        return GiveUp(GiveUpReason.NON_IDEMPOTENT)
    if body_sent and not body_buffered:
        return GiveUp(GiveUpReason.BODY_NOT_REPLAYABLE)
    if attempts_made >= policy.max_attempts:
        return GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED)
    delay = backoff_delay(policy, attempts_made, rng)
    if deadline is not None and now + delay >= deadline:
        return GiveUp(GiveUpReason.DEADLINE)
    return Retry(delay)


class RetryBudget:
    """Caps concurrent retries to a share of concurrent requests, per upstream.

    Retries in flight may reach ``max(min_retries, ratio * requests in flight)``. When the
    upstream is overloaded and most attempts fail, this keeps retries from multiplying its
    load; ``min_retries`` keeps retries possible at low traffic. Use: `request_started` /
    `request_finished` around each client request; when `decide_retry` says `Retry`, call
    `try_start_retry` and give up if it returns False; `retry_finished` when that retry ends.
    """

    __slots__ = ("_min_retries", "_ratio", "_requests", "_retries")

    def __init__(self, ratio: float = 0.2, min_retries: int = 3) -> None:
        if not 0 <= ratio <= 1 or min_retries < 0:
            raise ValueError("need 0 <= ratio <= 1 and min_retries >= 0")
        self._ratio = ratio
        self._min_retries = min_retries
        self._requests = 0
        self._retries = 0

    @property
    def requests_in_flight(self) -> int:
        return self._requests

    @property
    def retries_in_flight(self) -> int:
        return self._retries

    def request_started(self) -> None:
        self._requests += 1

    def request_finished(self) -> None:
        self._requests = max(0, self._requests - 1)

    def try_start_retry(self) -> bool:
        allowed = max(self._min_retries, int(self._ratio * self._requests))
        if self._retries >= allowed:
            return False
        self._retries += 1
        return True

    def retry_finished(self) -> None:
        self._retries = max(0, self._retries - 1)
