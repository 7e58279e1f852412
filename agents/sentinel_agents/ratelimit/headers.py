"""Response headers for a rate-limit decision: the IETF ``RateLimit-*`` fields and the older
``X-RateLimit-*`` spellings many clients still read.

All times are delta-seconds rounded up (a client told "0" would retry at once and be
refused again). ``X-RateLimit-Reset`` is delta-seconds too, like the IETF field, not an
epoch: the core has no wall clock, and a delta cannot be skewed by the client's clock.
"""

from __future__ import annotations

import math

from sentinel_agents.ratelimit.limiter import RateLimitResult


def _ceil_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds - 1e-9))


def render_rate_limit_headers(
    result: RateLimitResult, *, legacy: bool = True
) -> list[tuple[str, str]]:
    """Headers to send with the response; empty when no rule applied.

    A refused request also gets ``Retry-After`` (at least 1 s). A dry-run "would block"
    gets the informational fields only: dry-run must not change what clients do.
    """
    if result.rule is None:
        return []
    limit = str(result.limit)
    remaining = str(result.remaining)
    reset = str(_ceil_seconds(result.reset))
    headers = [
        ("RateLimit-Limit", limit),
        ("RateLimit-Remaining", remaining),
        ("RateLimit-Reset", reset),
        ("RateLimit-Policy", f"{result.limit};w={max(1, _ceil_seconds(result.window))}"),
    ]
    if legacy:
        headers += [
            ("X-RateLimit-Limit", limit),
            ("X-RateLimit-Remaining", remaining),
            ("X-RateLimit-Reset", reset),
        ]
    if not result.allowed:
        headers.append(("Retry-After", str(max(1, _ceil_seconds(result.retry_after)))))
    return headers
