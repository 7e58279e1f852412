"""Retry decisions: which failures, methods and bodies may be retried; backoff and budgets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_stack.config.schema import UpstreamConfig
from sentinel_stack.proxy.retry import (
    AttemptFailure,
    GiveUp,
    GiveUpReason,
    Retry,
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    decide_retry,
)

POLICY = RetryPolicy(max_attempts=3, retry_on_status=frozenset({502, 503}))


class Constant:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def decide(
    method: str = "GET",
    failure: AttemptFailure = AttemptFailure.RESET_BEFORE_HEADERS,
    *,
    status: int | None = None,
    attempts_made: int = 1,
    body_sent: bool = False,
    body_buffered: bool = False,
    now: float = 0.0,
    deadline: float | None = None,
    policy: RetryPolicy = POLICY,
) -> Retry | GiveUp:
    return decide_retry(
        policy,
        method=method,
        failure=failure,
        status=status,
        attempts_made=attempts_made,
        body_sent=body_sent,
        body_buffered=body_buffered,
        rng=Constant(0.5),
        now=now,
        deadline=deadline,
    )


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "get"])
def test_idempotent_methods_retry_a_reset_before_headers(method: str) -> None:
    assert isinstance(decide(method), Retry)


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT"])
def test_non_idempotent_methods_do_not_retry_a_reset(method: str) -> None:
    assert decide(method) == GiveUp(GiveUpReason.NON_IDEMPOTENT)


def test_connect_errors_retry_any_method_since_nothing_was_sent() -> None:
    assert isinstance(decide("POST", AttemptFailure.CONNECT_ERROR), Retry)


@pytest.mark.parametrize("status", [502, 503])
def test_configured_statuses_are_retried_for_idempotent_methods(status: int) -> None:
    assert isinstance(decide("GET", AttemptFailure.STATUS, status=status), Retry)
    assert decide("POST", AttemptFailure.STATUS, status=status) == GiveUp(
        GiveUpReason.NON_IDEMPOTENT
    )


@pytest.mark.parametrize("status", [500, 504, None])
def test_other_statuses_are_not_retried(status: int | None) -> None:
    assert decide("GET", AttemptFailure.STATUS, status=status) == GiveUp(GiveUpReason.NOT_RETRYABLE)


def test_statuses_are_not_retried_unless_configured() -> None:
    result = decide("GET", AttemptFailure.STATUS, status=503, policy=RetryPolicy())
    assert result == GiveUp(GiveUpReason.NOT_RETRYABLE)


def test_a_streamed_body_already_sent_cannot_be_replayed() -> None:
    assert decide("PUT", body_sent=True) == GiveUp(GiveUpReason.BODY_NOT_REPLAYABLE)
    assert isinstance(decide("PUT", body_sent=True, body_buffered=True), Retry)
    assert isinstance(decide("PUT", body_sent=False), Retry)


def test_attempts_are_bounded() -> None:
    assert isinstance(decide(attempts_made=2), Retry)
    assert decide(attempts_made=3) == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED)
    assert decide(policy=RetryPolicy(max_attempts=1)) == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED)


def test_no_retry_whose_backoff_overruns_the_deadline() -> None:
    # Constant(0.5) → delay = 0.5 * 0.025 after the first attempt.
    assert isinstance(decide(now=10.0, deadline=10.1), Retry)
    assert decide(now=10.0, deadline=10.01) == GiveUp(GiveUpReason.DEADLINE)


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_max=0.5)
    assert backoff_delay(policy, 1, Constant(0.999999)) == pytest.approx(0.1, rel=1e-3)
    assert backoff_delay(policy, 2, Constant(0.5)) == pytest.approx(0.1)
    assert backoff_delay(policy, 3, Constant(0.5)) == pytest.approx(0.2)
    assert backoff_delay(policy, 10, Constant(0.5)) == pytest.approx(0.25)
    assert backoff_delay(policy, 1, Constant(0.0)) == 0.0


@given(st.integers(1, 50), st.integers(0, 2**32))
def test_backoff_stays_within_its_ceiling(attempts: int, seed: int) -> None:
    policy = RetryPolicy(backoff_base=0.01, backoff_max=0.3)
    delay = backoff_delay(policy, attempts, random.Random(seed))
    assert 0 <= delay <= min(0.3, 0.01 * 2 ** (attempts - 1))


def test_from_config() -> None:
    policy = RetryPolicy.from_config(UpstreamConfig(targets=["h:1"], retries=2), [503])
    assert policy.max_attempts == 3
    assert policy.retry_on_status == {503}
    assert RetryPolicy.from_config(UpstreamConfig(targets=["h:1"], retries=0)).max_attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"backoff_base": 1.0, "backoff_max": 0.5}, {"retry_on_status": {404}}],
)
def test_policy_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"max_attempts|backoff|5xx"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_budget_allows_a_minimum_then_a_share_of_requests() -> None:
    budget = RetryBudget(ratio=0.2, min_retries=2)
    assert budget.try_start_retry()
    assert budget.try_start_retry()
    assert not budget.try_start_retry()
    for _ in range(20):
        budget.request_started()
    assert budget.try_start_retry()
    assert budget.try_start_retry()
    assert budget.retries_in_flight == 4
    assert not budget.try_start_retry()
    budget.retry_finished()
    assert budget.try_start_retry()


def test_budget_counters_never_go_negative() -> None:
    budget = RetryBudget()
    budget.request_finished()
    budget.retry_finished()
    assert budget.requests_in_flight == 0
    assert budget.retries_in_flight == 0


def test_budget_validation() -> None:
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=2)
