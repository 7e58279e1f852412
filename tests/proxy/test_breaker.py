"""Circuit breaker transitions: closed → open → half-open → closed/open, with injected time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_stack.proxy.breaker import BreakerPolicy, BreakerState, CircuitBreaker

POLICY = BreakerPolicy(
    failure_threshold=3, recovery_timeout=10.0, half_open_max_calls=2, success_threshold=2
)


def tripped(at: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        assert breaker.allow(at)
        breaker.record(False, at)
    assert breaker.state(at) is BreakerState.OPEN
    return breaker


def test_closed_allows_and_opens_after_n_consecutive_failures() -> None:
    breaker = CircuitBreaker(POLICY)
    assert breaker.state(0) is BreakerState.CLOSED
    assert breaker.record(False, 0) is BreakerState.CLOSED
    assert breaker.record(False, 0) is BreakerState.CLOSED
    assert breaker.allow(0)
    assert breaker.record(False, 1) is BreakerState.OPEN
    assert not breaker.allow(1)


def test_a_success_resets_the_failure_streak() -> None:
    breaker = CircuitBreaker(POLICY)
    for _ in range(10):
        breaker.record(False, 0)
        breaker.record(False, 0)
        breaker.record(True, 0)
    assert breaker.state(0) is BreakerState.CLOSED
    assert breaker.snapshot(0).consecutive_failures == 0


def test_open_rejects_until_the_recovery_timeout_then_half_opens() -> None:
    breaker = tripped(at=100.0)
    assert not breaker.allow(109.9)
    assert breaker.state(109.9) is BreakerState.OPEN
    assert breaker.state(110.0) is BreakerState.HALF_OPEN
    assert breaker.snapshot(110.0).changed_at == 110.0


def test_half_open_admits_at_most_k_probes_at_once() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.allow(10)
    assert not breaker.allow(10)
    assert breaker.snapshot(10).probes_in_flight == 2
    # A probe result frees its slot.
    breaker.record(True, 11)
    assert breaker.allow(11)


def test_enough_probe_successes_close_the_breaker() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.allow(10)
    assert breaker.record(True, 11) is BreakerState.HALF_OPEN
    assert breaker.record(True, 11) is BreakerState.CLOSED
    snap = breaker.snapshot(11)
    assert snap.consecutive_failures == 0
    assert snap.probes_in_flight == 0
    assert breaker.allow(11)


def test_a_probe_failure_reopens_for_another_full_timeout() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.record(False, 12) is BreakerState.OPEN
    assert not breaker.allow(21.9)
    assert breaker.state(22) is BreakerState.HALF_OPEN
    assert breaker.snapshot(22).times_opened == 2


def test_a_success_after_a_failure_in_half_open_does_not_close() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.allow(10)
    breaker.record(True, 11)
    breaker.record(False, 11)
    assert breaker.state(11) is BreakerState.OPEN


def test_lost_probes_count_as_failure_after_the_recovery_timeout() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.allow(10)
    assert not breaker.allow(19.9)  # still waiting for the two probes
    assert not breaker.allow(20)  # they never reported: open again
    assert breaker.state(20) is BreakerState.OPEN
    assert breaker.state(30) is BreakerState.HALF_OPEN
    assert breaker.allow(30)


def test_release_frees_a_probe_slot_without_an_outcome() -> None:
    breaker = tripped()
    assert breaker.allow(10)
    assert breaker.allow(10)
    breaker.release(10.5)
    assert breaker.state(10.5) is BreakerState.HALF_OPEN
    assert breaker.allow(10.5)


def test_results_arriving_while_open_do_not_change_the_state() -> None:
    breaker = tripped()
    assert breaker.record(True, 5) is BreakerState.OPEN
    assert breaker.record(False, 5) is BreakerState.OPEN
    assert breaker.state(10) is BreakerState.HALF_OPEN


def test_snapshot_counts() -> None:
    breaker = tripped()
    breaker.allow(1)
    breaker.allow(2)
    snap = breaker.snapshot(3)
    assert snap.state is BreakerState.OPEN
    assert snap.failures == 3
    assert snap.successes == 0
    assert snap.rejected == 2
    assert snap.times_opened == 1
    assert snap.changed_at == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"recovery_timeout": 0},
        {"half_open_max_calls": 0},
        {"success_threshold": 0},
    ],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


steps = st.lists(
    st.tuples(st.sampled_from(["allow", "ok", "fail", "release"]), st.floats(0, 6)),
    max_size=60,
)


@given(steps)
def test_transitions_follow_the_rules(script: list[tuple[str, float]]) -> None:
    breaker = CircuitBreaker(POLICY)
    now = 0.0
    streak = 0
    for op, dt in script:
        now += dt
        before = breaker.state(now)
        probes_before = breaker.snapshot(now).probes_in_flight
        if op == "allow":
            allowed = breaker.allow(now)
            if before is BreakerState.CLOSED:
                assert allowed
            if before is BreakerState.OPEN:
                assert not allowed
            if before is BreakerState.HALF_OPEN:
                assert allowed == (probes_before < POLICY.half_open_max_calls)
        elif op == "release":
            breaker.release(now)
        else:
            after = breaker.record(op == "ok", now)
            if before is BreakerState.CLOSED:
                streak = 0 if op == "ok" else streak + 1
                expected = BreakerState.OPEN if streak >= 3 else BreakerState.CLOSED
                assert after is expected
            elif before is BreakerState.OPEN or op == "fail":
                # Results while open change nothing; a probe failure re-opens.
                assert after is BreakerState.OPEN
            else:
                assert after in (BreakerState.HALF_OPEN, BreakerState.CLOSED)
            if after is not BreakerState.CLOSED:
                streak = 0
        snap = breaker.snapshot(now)
        assert 0 <= snap.probes_in_flight <= POLICY.half_open_max_calls
        if snap.state is not BreakerState.HALF_OPEN:
            assert snap.probes_in_flight == 0
