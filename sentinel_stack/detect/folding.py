"""Dedup and rate limiting: repeated alerts fold into one with a count. Pure; time passed in.

Dedup: the first alert of a (rule, key) goes out at once; repeats within the rule's window
are counted, and when the window ends one more alert goes out with ``count`` = the repeats
(so a storm of a thousand identical alerts costs two lines, and nothing is hidden).
Rate limit: each rule may send `burst` alerts, refilled at `per_minute`; beyond that, new
keys are counted too and reported as one alert per rule when `flush` runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from sentinel_stack.detect.alert import Alert, new_alert_id

__all__ = ["AlertFolder"]

MAX_KEYS = 50_000


@dataclass(slots=True)
class _Fold:
    started: float
    window: float
    sample: Alert
    repeats: int = 0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0
    sample: Alert | None = None


class AlertFolder:
    def __init__(self, window: float = 60.0, per_minute: float = 30.0, burst: int = 30) -> None:
        self.window = window
        self.per_minute = per_minute
        self.burst = burst
        self._folds: dict[tuple[str, str], _Fold] = {}
        self._buckets: dict[str, _Bucket] = {}
        self.folded = 0
        self.rate_limited = 0

    def admit(self, alert: Alert, key: str, now: float, window: float | None = None) -> list[Alert]:
        """The alerts to send now for this one: [alert], [], or a flushed repeat and alert."""
        fold_key = (alert.rule, key)
        fold = self._folds.get(fold_key)
        out: list[Alert] = []
        if fold is not None:
            if now - fold.started < fold.window:
                fold.repeats += 1
                self.folded += 1
                return out
            del self._folds[fold_key]
            if fold.repeats:
                out.append(_repeat(fold, now))
        if not self._take(alert, now):
            return out
        if len(self._folds) >= MAX_KEYS:
            self._folds.pop(next(iter(self._folds)))
        self._folds[fold_key] = _Fold(now, self.window if window is None else window, alert)
        out.append(alert)
        return out

    def _take(self, alert: Alert, now: float) -> bool:
        bucket = self._buckets.get(alert.rule)
        if bucket is None:
            bucket = self._buckets[alert.rule] = _Bucket(float(self.burst), now)
        refill = (now - bucket.updated) * self.per_minute / 60.0
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, refill))
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        bucket.suppressed += 1
        bucket.sample = bucket.sample or alert
        self.rate_limited += 1
        return False

    def flush(self, now: float) -> list[Alert]:
        """Repeats whose window ended, and one summary per rate-limited rule."""
        out: list[Alert] = []
        for fold_key, fold in list(self._folds.items()):
            if now - fold.started >= fold.window:
                del self._folds[fold_key]
                if fold.repeats:
                    out.append(_repeat(fold, now))
        for rule, bucket in self._buckets.items():
            if bucket.suppressed and bucket.sample is not None:
                out.append(
                    msgspec.structs.replace(
                        bucket.sample,
                        id=new_alert_id(),
                        time=now,
                        summary=f"{bucket.suppressed} more {rule} alerts held back by the "
                        f"rate limit; the first: {bucket.sample.summary}",
                        count=bucket.suppressed,
                    )
                )
                bucket.suppressed, bucket.sample = 0, None
        return out


def _repeat(fold: _Fold, now: float) -> Alert:
    return msgspec.structs.replace(fold.sample, id=new_alert_id(), time=now, count=fold.repeats)
