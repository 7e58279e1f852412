"""Bounded building blocks for live statistics: per-second rings, latency histograms, top-k.

Pure: time is passed in (as whole seconds where it matters), nothing reads a clock. Memory
is fixed at construction whatever the event rate, so a flood costs CPU per event but never
grows the TUI.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class SecondRing(Generic[T]):
    """One slot per second for the last ``size`` seconds; a slot is recycled when reused."""

    def __init__(self, size: int, make: Callable[[], T], reset: Callable[[T], None]) -> None:
        self.size = size
        self._make = make
        self._reset = reset
        self._slots: list[T] = [make() for _ in range(size)]
        self._stamps: list[int] = [-1] * size

    def slot(self, second: int) -> T:
        index = second % self.size
        slot = self._slots[index]
        if self._stamps[index] != second:
            self._reset(slot)
            self._stamps[index] = second
        return slot

    def recent(self, now: int, seconds: int) -> Iterator[T]:
        """Slots of the last ``seconds`` seconds up to ``now`` (included) that hold data."""
        oldest = now - min(seconds, self.size) + 1
        for index, stamp in enumerate(self._stamps):
            if oldest <= stamp <= now:
                yield self._slots[index]

    def series(self, now: int, seconds: int, value: Callable[[T], float]) -> list[float]:
        """``value`` of each second, oldest first; 0 for seconds without data."""
        seconds = min(seconds, self.size)
        out = []
        for second in range(now - seconds + 1, now + 1):
            index = second % self.size
            out.append(value(self._slots[index]) if self._stamps[index] == second else 0.0)
        return out


# Latency buckets: 0.05 ms up to ~2 minutes, each 15 % wider than the one before.
_GROWTH = 1.15
BOUNDS: tuple[float, ...] = tuple(
    0.05 * _GROWTH**k for k in range(math.ceil(math.log(120_000 / 0.05, _GROWTH)) + 1)
)
NBUCKETS = len(BOUNDS) + 1  # the last bucket holds everything slower


def bucket_of(latency_ms: float) -> int:
    return bisect.bisect_left(BOUNDS, latency_ms)


def bucket_value(index: int) -> float:
    """A representative latency for a bucket: the geometric middle of its bounds."""
    if index == 0:
        return BOUNDS[0]
    if index >= len(BOUNDS):
        return BOUNDS[-1]
    return math.sqrt(BOUNDS[index - 1] * BOUNDS[index])


def percentiles(histogram: list[int], quantiles: tuple[float, ...]) -> tuple[float | None, ...]:
    """Latencies at ``quantiles`` (0..1) from a bucket histogram; None when it is empty."""
    total = sum(histogram)
    if total == 0:
        return tuple(None for _ in quantiles)
    results: list[float | None] = []
    for q in quantiles:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index, count in enumerate(histogram):
            seen += count
            if seen >= rank:
                results.append(bucket_value(index))
                break
    return tuple(results)


class LatencyWindow:
    """Latencies of the last ``window`` seconds as per-second histograms."""

    def __init__(self, window: int = 60) -> None:
        self.window = window
        self._ring: SecondRing[list[int]] = SecondRing(window, _zeros, _clear)

    def add(self, latency_ms: float, second: int) -> None:
        self._ring.slot(second)[bucket_of(latency_ms)] += 1

    def histogram(self, now: int, seconds: int | None = None) -> list[int]:
        merged = [0] * NBUCKETS
        for slot in self._ring.recent(now, seconds or self.window):
            for index, count in enumerate(slot):
                if count:
                    merged[index] += count
        return merged

    def percentiles(
        self, now: int, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
    ) -> tuple[float | None, ...]:
        return percentiles(self.histogram(now), quantiles)


def _zeros() -> list[int]:
    return [0] * NBUCKETS


def _clear(slot: list[int]) -> None:
    slot[:] = _ZERO_ROW


_ZERO_ROW = [0] * NBUCKETS


class HeavyHitters(Generic[K]):
    """The most frequent keys in a stream, in fixed memory (Metwally's space-saving).

    At most ``capacity`` keys are kept. A new key evicts the least counted one and inherits
    its count, so counts may be overestimated by at most that of the evicted key, and any key
    seen more than ``total / capacity`` times is guaranteed to be present.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self.counts: dict[K, int] = {}
        self.total = 0

    def add(self, key: K, count: int = 1) -> None:
        self.total += count
        counts = self.counts
        if key in counts:
            counts[key] += count
        elif len(counts) < self.capacity:
            counts[key] = count
        else:
            smallest = min(counts, key=counts.__getitem__)
            counts[key] = counts.pop(smallest) + count

    def top(self, n: int) -> list[tuple[K, int]]:
        return sorted(self.counts.items(), key=lambda kv: kv[1], reverse=True)[:n]

    def clear(self) -> None:
        self.counts.clear()
        self.total = 0


class RecentTop(Generic[K]):
    """Heavy hitters of the last ``period`` to twice ``period`` seconds (two generations)."""

    def __init__(self, period: int = 30, capacity: int = 64) -> None:
        self.period = period
        self._current: HeavyHitters[K] = HeavyHitters(capacity)
        self._previous: HeavyHitters[K] = HeavyHitters(capacity)
        self._generation = 0

    def _rotate(self, second: int) -> None:
        generation = second // self.period
        if generation == self._generation:
            return
        if generation == self._generation + 1:
            self._previous, self._current = self._current, self._previous
        else:  # a gap longer than a period: both generations are stale
            self._previous.clear()
        self._current.clear()
        self._generation = generation

    def add(self, key: K, second: int, count: int = 1) -> None:
        self._rotate(second)
        self._current.add(key, count)

    def top(self, n: int, now: int) -> list[tuple[K, int]]:
        self._rotate(now)
        merged = dict(self._previous.counts)
        for key, count in self._current.counts.items():
            merged[key] = merged.get(key, 0) + count
        return sorted(merged.items(), key=lambda kv: kv[1], reverse=True)[:n]
