"""Target health: active-check thresholds, passive ejection with growing times and a cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_stack.config.schema import UpstreamConfig
from sentinel_stack.proxy.balancing import Target
from sentinel_stack.proxy.health import (
    ActiveCheckPolicy,
    ActiveState,
    EjectionPolicy,
    UpstreamHealth,
    http_check_passed,
    is_passive_failure,
)

A, B, C, D = (Target("10.0.0.1", p) for p in (1, 2, 3, 4))
ACTIVE = ActiveCheckPolicy(healthy_threshold=2, unhealthy_threshold=3)
EJECTION = EjectionPolicy(
    consecutive_failures=2, base_ejection_time=10.0, max_ejection_time=25.0, max_ejection_percent=50
)


def health(*targets: Target) -> UpstreamHealth[Target]:
    return UpstreamHealth(list(targets or (A, B, C, D)), ACTIVE, EJECTION)


def eject(h: UpstreamHealth[Target], target: Target, now: float) -> bool:
    h.record_response(target, True, now)
    return h.record_response(target, True, now)


def test_targets_start_healthy_and_available() -> None:
    h = health()
    assert h.available(0) == {A, B, C, D}


def test_unhealthy_after_threshold_failed_checks_and_back_after_threshold_passes() -> None:
    h = health()
    assert h.record_check(A, False, 0) is None
    assert h.record_check(A, False, 1) is None
    assert h.record_check(A, False, 2) is ActiveState.UNHEALTHY
    assert A not in h.available(2)
    assert h.record_check(A, True, 3) is None
    assert A not in h.available(3)
    assert h.record_check(A, True, 4) is ActiveState.HEALTHY
    assert A in h.available(4)


def test_a_contrary_result_resets_the_check_streak() -> None:
    h = health()
    h.record_check(A, False, 0)
    h.record_check(A, False, 0)
    h.record_check(A, True, 0)
    h.record_check(A, False, 0)
    h.record_check(A, False, 0)
    assert h.is_available(A, 0)


def test_consecutive_failures_eject_for_the_base_time() -> None:
    h = health()
    assert not h.record_response(A, True, 0)
    assert h.record_response(A, True, 1)
    assert not h.is_available(A, 1)
    assert not h.is_available(A, 10.9)
    assert h.is_available(A, 11)


def test_a_success_resets_the_passive_streak() -> None:
    h = health()
    h.record_response(A, True, 0)
    h.record_response(A, False, 0)
    assert not h.record_response(A, True, 0)
    assert h.is_available(A, 0)


def test_ejection_time_grows_with_repeated_ejections_and_is_capped() -> None:
    h = health()
    assert eject(h, A, 0)
    assert h.is_available(A, 10)
    assert eject(h, A, 10)  # second ejection: 20 s
    assert not h.is_available(A, 29.9)
    assert h.is_available(A, 30)
    assert eject(h, A, 30)  # third: 30 s, capped at 25 s
    assert not h.is_available(A, 54.9)
    assert h.is_available(A, 55)
    assert h.snapshot(55)[0].times_ejected == 3


def test_ejection_multiplier_resets_after_a_quiet_max_ejection_time() -> None:
    h = health()
    assert eject(h, A, 0)
    assert eject(h, A, 10)  # ends at 30
    assert eject(h, A, 55)  # 25 s after the last ejection ended: fresh start, 10 s
    assert h.is_available(A, 65)
    assert h.snapshot(65)[0].times_ejected == 1


def test_results_during_ejection_are_ignored() -> None:
    h = health()
    assert eject(h, A, 0)
    for _ in range(5):
        assert not h.record_response(A, True, 5)
    assert h.is_available(A, 10)
    assert h.snapshot(10)[0].consecutive_failures == 0


def test_at_most_max_ejection_percent_are_ejected() -> None:
    h = health()  # 4 targets, 50 %: two may be out at once
    assert eject(h, A, 0)
    assert eject(h, B, 0)
    assert not eject(h, C, 0)
    assert h.available(0) == {C, D}
    # Once A is back, C's next failure ejects it (its streak kept counting).
    assert h.record_response(C, True, 10)
    assert h.available(10) == {A, B, D}


def test_the_last_available_target_is_never_ejected() -> None:
    h = health(A, B)
    for _ in range(3):
        h.record_check(A, False, 0)
    assert not eject(h, B, 0)
    assert h.available(0) == {B}
    single = health(A)
    assert not eject(single, A, 0)
    assert single.available(0) == {A}


def test_ejected_targets_serve_when_every_other_target_fails_its_checks() -> None:
    h = health(A, B)
    assert eject(h, A, 0)
    for _ in range(3):
        h.record_check(B, False, 1)
    assert h.available(1) == {A}
    assert h.snapshot(1)[0].ejected


def test_active_failures_still_take_the_last_target_out() -> None:
    # Active checks are the truth about reachability: no cap applies to them.
    h = health(A)
    for _ in range(3):
        h.record_check(A, False, 0)
    assert h.available(0) == frozenset()


def test_snapshot() -> None:
    h = health()
    eject(h, A, 0)
    snap = {s.target: s for s in h.snapshot(1)}
    assert snap[A].ejected
    assert not snap[A].available
    assert snap[A].ejected_until == 10.0
    assert snap[B].available
    assert snap[B].ejected_until is None
    assert snap[B].active is ActiveState.HEALTHY


@pytest.mark.parametrize(
    ("status", "passed"), [(200, True), (302, True), (404, False), (503, False)]
)
def test_http_check_passed(status: int, passed: bool) -> None:
    assert http_check_passed(status) is passed


@pytest.mark.parametrize(
    ("status", "failure"), [(None, True), (500, True), (503, True), (404, False), (200, False)]
)
def test_is_passive_failure(status: int | None, failure: bool) -> None:
    assert is_passive_failure(status) is failure


def test_from_config() -> None:
    config = UpstreamConfig.model_validate(
        {
            "targets": ["127.0.0.1:1", "127.0.0.1:2"],
            "health_check": {"kind": "http", "path": "/healthz", "unhealthy_threshold": 1},
        }
    )
    h = UpstreamHealth.from_config(config)
    assert h.active_policy.kind == "http"
    assert h.active_policy.path == "/healthz"
    assert h.record_check(Target("127.0.0.1", 1), False, 0) is ActiveState.UNHEALTHY
    assert h.ejection_policy == EjectionPolicy()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"base_ejection_time": 0},
        {"base_ejection_time": 10, "max_ejection_time": 5},
        {"max_ejection_percent": 101},
    ],
)
def test_ejection_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        EjectionPolicy(**kwargs)  # type: ignore[arg-type]


events = st.lists(
    st.tuples(
        st.sampled_from(["check", "check", "response"]),
        st.sampled_from([A, B, C, D]),
        st.booleans(),
        st.floats(0, 8),
    ),
    max_size=80,
)


@given(events)
def test_ejection_never_exceeds_the_cap_or_empties_the_upstream(
    script: list[tuple[str, Target, bool, float]],
) -> None:
    h = health()
    now = 0.0
    for kind, target, flag, dt in script:
        now += dt
        if kind == "check":
            h.record_check(target, flag, now)
        else:
            ejected_now = h.record_response(target, flag, now)
            if ejected_now:
                assert flag
        snap = h.snapshot(now)
        assert sum(s.ejected for s in snap) <= 2
        healthy = {s.target for s in snap if s.active is ActiveState.HEALTHY}
        available = h.available(now)
        # Ejection alone never leaves an upstream with healthy targets empty.
        assert bool(available) == bool(healthy)
        assert available <= healthy
        assert available == {s.target for s in snap if s.available}


def test_recovery_proven_by_active_checks_ends_an_ejection() -> None:
    from sentinel_stack.proxy.health import ActiveCheckPolicy, EjectionPolicy, UpstreamHealth

    health = UpstreamHealth(
        ["a", "b"],
        ActiveCheckPolicy(healthy_threshold=1, unhealthy_threshold=1),
        EjectionPolicy(consecutive_failures=1, base_ejection_time=30.0, max_ejection_time=300.0),
    )
    assert health.record_response("a", True, 0.0)  # connect error: ejected for 30 s
    health.record_check("a", False, 0.5)  # the outage, seen by the checks
    assert "a" not in health.available(1.0)
    health.record_check("a", True, 2.0)  # back up
    assert "a" in health.available(2.0)


def test_an_ejection_for_errors_outlasts_passing_checks() -> None:
    from sentinel_stack.proxy.health import ActiveCheckPolicy, EjectionPolicy, UpstreamHealth

    health = UpstreamHealth(
        ["a", "b"],
        ActiveCheckPolicy(healthy_threshold=1, unhealthy_threshold=1),
        EjectionPolicy(consecutive_failures=1, base_ejection_time=30.0, max_ejection_time=300.0),
    )
    assert health.record_response("a", True, 0.0)  # a 500: ejected, though TCP checks pass
    health.record_check("a", True, 1.0)
    assert "a" not in health.available(1.0)
    assert "a" in health.available(31.0)
