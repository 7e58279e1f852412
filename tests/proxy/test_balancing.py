"""Target selection: each policy's choice, skipping unavailable targets, in-flight tracking."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_stack.config.schema import UpstreamConfig
from sentinel_stack.proxy.balancing import BalancePolicy, Balancer, Target, parse_target

A, B, C, D = (Target("10.0.0.1", p) for p in (1, 2, 3, 4))
ALL = frozenset({A, B, C, D})


class FixedRandom:
    """Returns the given floats in turn, to steer p2c's two draws."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1:8000", Target("127.0.0.1", 8000)),
        ("app.internal:80", Target("app.internal", 80)),
        ("[::1]:9000", Target("::1", 9000)),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target
    assert str(target) == text


@pytest.mark.parametrize(
    "text", ["localhost", ":80", "host:", "host:0", "host:65536", "host:x", "::1:80", "[::1]80"]
)
def test_parse_target_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="target"):
        parse_target(text)


def test_round_robin_cycles_in_order() -> None:
    balancer = Balancer([A, B, C])
    rng = random.Random(0)
    assert [balancer.pick(ALL, rng) for _ in range(6)] == [A, B, C, A, B, C]


def test_round_robin_skips_unavailable_targets_and_stays_fair() -> None:
    balancer = Balancer([A, B, C, D])
    rng = random.Random(0)
    picks = [balancer.pick({A, C, D}, rng) for _ in range(6)]
    assert picks == [A, C, D, A, C, D]
    # B comes back into the rotation where the cursor is.
    assert [balancer.pick(ALL, rng) for _ in range(4)] == [A, B, C, D]


def test_least_connections_prefers_the_idle_target() -> None:
    balancer = Balancer([A, B, C], "least_connections")
    rng = random.Random(0)
    balancer.acquire(A)
    balancer.acquire(A)
    balancer.acquire(B)
    assert balancer.pick(ALL, rng) == C
    balancer.acquire(C)
    balancer.acquire(C)
    assert balancer.pick(ALL, rng) == B
    assert balancer.in_flight(A) == 2


def test_least_connections_spreads_ties() -> None:
    balancer = Balancer([A, B, C], "least_connections")
    rng = random.Random(0)
    assert [balancer.pick(ALL, rng) for _ in range(3)] == [A, B, C]


def test_least_connections_ignores_unavailable_idle_targets() -> None:
    balancer = Balancer([A, B], "least_connections")
    balancer.acquire(A)
    assert balancer.pick({A}, random.Random(0)) == A


def test_p2c_picks_the_less_loaded_of_two_distinct_random_targets() -> None:
    balancer = Balancer([A, B, C, D], "p2c")
    balancer.acquire(A)
    # First draw → index 0 (A); second draw over the 3 others → index 0 → skips A → B.
    assert balancer.pick(ALL, FixedRandom(0.0, 0.0)) == B
    balancer.acquire(B)
    balancer.acquire(B)
    assert balancer.pick(ALL, FixedRandom(0.0, 0.0)) == A
    # Last index for both draws: D (index 3), then C (index 2 of the rest).
    assert balancer.pick(ALL, FixedRandom(0.999, 0.999)) in {C, D}


def test_p2c_spreads_load_over_all_targets() -> None:
    balancer = Balancer([A, B, C, D], "p2c")
    rng = random.Random(7)
    counts = Counter(balancer.pick(ALL, rng) for _ in range(400))
    assert set(counts) == ALL


def test_release_never_goes_negative() -> None:
    balancer = Balancer([A])
    balancer.acquire(A)
    balancer.release(A)
    balancer.release(A)
    assert balancer.in_flight(A) == 0


def test_none_when_nothing_is_available() -> None:
    all_policies: tuple[BalancePolicy, ...] = ("round_robin", "least_connections", "p2c")
    for policy in all_policies:
        balancer = Balancer([A, B], policy)
        assert balancer.pick(frozenset(), random.Random(0)) is None
        # Targets outside the upstream are not "available" either.
        assert balancer.pick({C}, random.Random(0)) is None


def test_avoided_targets_are_used_only_as_a_last_resort() -> None:
    balancer = Balancer([A, B, C])
    rng = random.Random(0)
    assert balancer.pick(ALL, rng, avoid={A, B}) == C
    assert balancer.pick({A, B}, rng, avoid={A, B}) in {A, B}


def test_from_config() -> None:
    config = UpstreamConfig(targets=["127.0.0.1:1", "[::1]:2"], balance="p2c")
    balancer = Balancer.from_config(config)
    assert balancer.targets == (Target("127.0.0.1", 1), Target("::1", 2))
    assert balancer.policy == "p2c"


def test_any_hashable_target_type_works() -> None:
    balancer: Balancer[str] = Balancer(["x", "y"])
    assert balancer.pick({"y"}, random.Random(0)) == "y"


def test_refuses_empty_or_duplicate_targets() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Balancer([])
    with pytest.raises(ValueError, match="twice"):
        Balancer([A, A])


policies = st.sampled_from(["round_robin", "least_connections", "p2c"])
ops = st.lists(
    st.tuples(
        st.sampled_from(["pick", "acquire", "release"]),
        st.sets(st.sampled_from([A, B, C, D])),
        st.sets(st.sampled_from([A, B, C, D]), max_size=2),
    ),
    max_size=40,
)


@given(policies, ops, st.integers(0, 2**32))
def test_never_picks_an_unavailable_target(
    policy: BalancePolicy, steps: list[tuple[str, set[Target], set[Target]]], seed: int
) -> None:
    balancer = Balancer([A, B, C, D], policy)
    rng = random.Random(seed)
    for op, available, avoid in steps:
        if op == "pick":
            chosen = balancer.pick(available, rng, avoid)
            if available:
                assert chosen in available
                if available - avoid:
                    assert chosen not in avoid
            else:
                assert chosen is None
        else:
            for target in available:
                getattr(balancer, op)(target)
        assert all(balancer.in_flight(t) >= 0 for t in (A, B, C, D))
