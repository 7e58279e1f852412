"""Rate-limit agent core: GCRA buckets keyed by request attributes, decided with an injected clock.

The agent wrapper builds a `RateLimiter` from `parse_rate_limit_config(table)`, calls
`decide(request, now)` per request and answers 429 with `render_rate_limit_headers(result)`
when ``result.allowed`` is False.
"""

from sentinel_agents.ratelimit.config import (
    HeaderMatch,
    KeyPart,
    RateLimitConfig,
    RateLimitConfigError,
    RateLimitRule,
    RuleMatch,
    parse_rate_limit_config,
)
from sentinel_agents.ratelimit.gcra import GcraLimit, GcraOutcome, gcra_step
from sentinel_agents.ratelimit.headers import render_rate_limit_headers
from sentinel_agents.ratelimit.limiter import (
    UNLIMITED,
    RateLimiter,
    RateLimitRequest,
    RateLimitResult,
    RuleCounters,
)

__all__ = [
    "UNLIMITED",
    "GcraLimit",
    "GcraOutcome",
    "HeaderMatch",
    "KeyPart",
    "RateLimitConfig",
    "RateLimitConfigError",
    "RateLimitRequest",
    "RateLimitResult",
    "RateLimitRule",
    "RateLimiter",
    "RuleCounters",
    "RuleMatch",
    "gcra_step",
    "parse_rate_limit_config",
    "render_rate_limit_headers",
]
