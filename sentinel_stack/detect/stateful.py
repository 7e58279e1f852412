"""The memory of threshold and sequence rules: bounded, windowed, keyed. Pure; times given.

Times are the events' own (`evt.time`), so a replayed recording behaves as it did live;
`expire` takes the current time to forget groups nobody has fed for a window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from itertools import pairwise
from typing import Any

from sentinel_stack.detect.rules import Sequence, Threshold

__all__ = ["SequenceTracker", "ThresholdTracker"]

MAX_GROUPS = 10_000
_SLACK = 5.0  # seconds of clock skew between producers tolerated before forgetting


class ThresholdTracker:
    """Counts matches (or distinct values) per group within a sliding window."""

    def __init__(self, threshold: Threshold) -> None:
        self.count = threshold.count
        self.window = threshold.window
        self.distinct = threshold.distinct is not None
        self._counts: dict[Hashable, deque[float]] = {}
        self._values: dict[Hashable, dict[Hashable, float]] = {}
        self._last: dict[Hashable, float] = {}

    def feed(self, group: Hashable, value: Hashable, t: float) -> list[Any] | None:
        """The values counted when this match reaches the threshold (the group restarts)."""
        self._touch(group, t)
        horizon = t - self.window
        if self.distinct:
            if value is None:
                return None
            seen = self._values.setdefault(group, {})
            seen.pop(value, None)
            seen[value] = t  # insertion order is time order: the oldest come first
            while seen and next(iter(seen.values())) < horizon:
                seen.pop(next(iter(seen)))
            if len(seen) < self.count:
                return None
            del self._values[group]
            return list(seen)
        times = self._counts.setdefault(group, deque())
        times.append(t)
        while times and times[0] < horizon:
            times.popleft()
        if len(times) < self.count:
            return None
        del self._counts[group]
        return [len(times)]

    def _touch(self, group: Hashable, t: float) -> None:
        self._last.pop(group, None)
        self._last[group] = t
        if len(self._last) > MAX_GROUPS:
            self._forget(next(iter(self._last)))

    def _forget(self, group: Hashable) -> None:
        self._last.pop(group, None)
        self._counts.pop(group, None)
        self._values.pop(group, None)

    def expire(self, now: float) -> None:
        horizon = now - self.window - _SLACK
        while self._last:
            group, last = next(iter(self._last.items()))
            if last >= horizon:
                break
            self._forget(group)


class SequenceTracker:
    """Per key, the latest event of each step; fires when every step is within the window."""

    def __init__(self, sequence: Sequence) -> None:
        self.window = sequence.window
        self.ordered = sequence.ordered
        self.steps = len(sequence.steps)
        self._partial: dict[Hashable, list[tuple[float, Any] | None]] = {}
        self._last: dict[Hashable, float] = {}

    def feed(
        self, step: int, key: Hashable, event: Any, t: float
    ) -> list[tuple[float, Any]] | None:
        """The steps' (time, event) in step order once the sequence is complete."""
        slots = self._partial.get(key)
        if slots is None:
            if step != 0 and self.ordered:
                return None  # nothing to continue
            if len(self._partial) >= MAX_GROUPS:
                self._drop(next(iter(self._last)))
            slots = self._partial[key] = [None] * self.steps
        slots[step] = (t, event)
        self._last.pop(key, None)
        self._last[key] = t
        if self.ordered:
            # A newer first step restarts the sequence; later steps must follow in order.
            for later in range(step + 1, self.steps):
                slots[later] = None
        complete = [slot for slot in slots if slot is not None]
        if len(complete) < self.steps:
            return None
        times = [slot[0] for slot in complete]
        if max(times) - min(times) > self.window:
            return None
        if self.ordered and any(a[0] > b[0] for a, b in pairwise(complete)):
            return None
        self._drop(key)
        return complete

    def _drop(self, key: Hashable) -> None:
        self._partial.pop(key, None)
        self._last.pop(key, None)

    def expire(self, now: float) -> None:
        horizon = now - self.window - _SLACK
        while self._last:
            key, last = next(iter(self._last.items()))
            if last >= horizon:
                break
            self._drop(key)
