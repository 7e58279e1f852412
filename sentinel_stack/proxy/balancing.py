"""Which target of an upstream gets the next request: round robin, least connections or p2c.

The balancer only chooses; it does not know why a target is unavailable. The caller passes
the targets that may be used now (healthy and not ejected, from `UpstreamHealth.available`)
and, for a retry, the targets that already failed this request. In-flight counts are kept
here because least connections and p2c need them: the I/O layer calls `acquire` when it
starts sending to a target and `release` when that exchange ends, however it ends.

Randomness is injected (`random.Random` fits) so that tests and benchmarks are reproducible.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from sentinel_stack.config.schema import UpstreamConfig

__all__ = ["BalancePolicy", "Balancer", "RandomSource", "Target", "parse_target"]

BalancePolicy = Literal["round_robin", "least_connections", "p2c"]
T = TypeVar("T", bound=Hashable)


class RandomSource(Protocol):
    """Uniform floats in [0, 1): `random.Random` or anything with its `random` method."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One upstream address. ``host`` is a name or IP (IPv6 without brackets)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """``"host:port"`` or ``"[v6]:port"`` → `Target`; ValueError says what is wrong."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"target {text!r}: write an IPv6 target as [addr]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"target {text!r}: expected host:port (IPv6 as [addr]:port)")
    if not host:
        raise ValueError(f"target {text!r}: the host is empty")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"target {text!r}: the port must be a number from 1 to 65535")
    return Target(host, int(port_text))


class Balancer(Generic[T]):
    """Chooses among one upstream's targets and tracks their in-flight requests.

    Generic in the target type: `from_config` gives `Target`s, but the I/O layer may use its
    own hashable address type. Not thread-safe; one instance per upstream per worker, used
    from one event loop.
    """

    __slots__ = ("_cursor", "_in_flight", "_index", "_policy", "_targets")

    def __init__(self, targets: Sequence[T], policy: BalancePolicy = "round_robin") -> None:
        if not targets:
            raise ValueError("an upstream needs at least one target")
        if len(set(targets)) != len(targets):
            raise ValueError("an upstream lists the same target twice")
        self._targets = tuple(targets)
        self._policy = policy
        self._in_flight = dict.fromkeys(self._targets, 0)
        self._index = {target: index for index, target in enumerate(self._targets)}
        self._cursor = 0

    @staticmethod
    def from_config(config: UpstreamConfig) -> Balancer[Target]:
        return Balancer([parse_target(t) for t in config.targets], config.balance)

    @property
    def targets(self) -> tuple[T, ...]:
        return self._targets

    @property
    def policy(self) -> BalancePolicy:
        return self._policy

    def in_flight(self, target: T) -> int:
        return self._in_flight[target]

    def acquire(self, target: T) -> None:
        """A request is now in flight to *target*."""
        self._in_flight[target] += 1

    def release(self, target: T) -> None:
        """A request to *target* ended (success, error or cancellation alike)."""
        count = self._in_flight[target]
        # Never negative: a stray double release must not make a target look idle forever.
        self._in_flight[target] = count - 1 if count > 0 else 0

    def pick(
        self,
        available: Collection[T],
        rng: RandomSource,
        avoid: Collection[T] = (),
    ) -> T | None:
        """The target for the next attempt, or None when no target is available.

        Only targets in *available* are ever returned. Targets in *avoid* (those that already
        failed this request) are chosen only when no other available target is left, since
        retrying the same broken target is better than failing outright.
        """
        candidates = [t for t in self._targets if t in available and t not in avoid]
        if not candidates:
            candidates = [t for t in self._targets if t in available]
            if not candidates:
                return None
        if len(candidates) == 1:
            return candidates[0]
        if self._policy == "p2c":
            return self._power_of_two(candidates, rng)
        return self._rotate(candidates, least_loaded=self._policy == "least_connections")

    def _rotate(self, candidates: list[T], *, least_loaded: bool) -> T:
        # Scanning from the cursor keeps round robin fair over the whole target list when
        # some targets are skipped, and spreads least-connections ties over the targets
        # instead of always sending them to the first one.
        allowed = set(candidates)
        size = len(self._targets)
        best = candidates[0]
        best_load = -1
        for step in range(size):
            target = self._targets[(self._cursor + step) % size]
            if target not in allowed:
                continue
            if not least_loaded:
                best = target
                break
            load = self._in_flight[target]
            if best_load < 0 or load < best_load:
                best, best_load = target, load
        self._cursor = (self._index[best] + 1) % size
        return best

    def _power_of_two(self, candidates: list[T], rng: RandomSource) -> T:
        size = len(candidates)
        first = min(int(rng.random() * size), size - 1)
        second = min(int(rng.random() * (size - 1)), size - 2)
        if second >= first:
            second += 1  # two distinct candidates, each pair equally likely
        a, b = candidates[first], candidates[second]
        return b if self._in_flight[b] < self._in_flight[a] else a
