"""The rate-limit agent: GCRA rules (`RateLimiter`) behind the agent protocol.

A refused request gets 429 with ``Retry-After`` and the ``RateLimit-*``/``X-RateLimit-*``
fields; an admitted one that a rule covers gets the informational fields on its response.
Time is `trio.current_time()` (monotonic). Buckets survive a configuration push that changes
nothing (the proxy re-sends the config on every reconnect); a real change starts them afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import trio

from sentinel_agents.program import ConfigRejected, ProgramAgent
from sentinel_agents.ratelimit.config import (
    RateLimitConfig,
    RateLimitConfigError,
    parse_rate_limit_config,
)
from sentinel_agents.ratelimit.headers import render_rate_limit_headers
from sentinel_agents.ratelimit.limiter import RateLimiter, RateLimitRequest, RateLimitResult
from sentinel_stack.agent import (
    AgentHealth,
    Audit,
    Decision,
    HeaderOps,
    RequestHeaders,
    allow,
    block,
)

__all__ = ["RateLimitAgent", "RateLimitAgentSettings", "parse_rate_limit_agent_config"]

_ALLOW = Decision()


class RateLimitAgentSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The agent's own keys, beside the limiter's (``rules``, ``dry_run``, ``max_keys``)."""

    status: int = 429
    body: str = "too many requests\n"
    response_headers: bool = True
    """Admitted requests that a rule covers get the ``RateLimit-*`` fields too."""
    legacy_headers: bool = True
    """Also send the ``X-RateLimit-*`` spellings."""


_AGENT_KEYS = frozenset(RateLimitAgentSettings.__struct_fields__)


def parse_rate_limit_agent_config(
    raw: Mapping[str, Any],
) -> tuple[RateLimitConfig, RateLimitAgentSettings]:
    """Split one config table into the limiter's rules and the agent's settings."""
    try:
        limits = parse_rate_limit_config({k: v for k, v in raw.items() if k not in _AGENT_KEYS})
        settings = msgspec.convert(
            {k: v for k, v in raw.items() if k in _AGENT_KEYS}, RateLimitAgentSettings
        )
    except RateLimitConfigError as error:
        raise ConfigRejected(str(error)) from None
    except msgspec.ValidationError as error:
        raise ConfigRejected(str(error)) from None
    if not 400 <= settings.status <= 599:
        raise ConfigRejected(f"status must be a 4xx or 5xx code, not {settings.status}")
    return limits, settings


class RateLimitAgent(ProgramAgent):
    """Refuses requests over their rule's rate; see docs/agents.md for the rules."""

    name = "ratelimit"
    version = "1.0.0"
    concurrent = False  # decisions only compute

    def __init__(self) -> None:
        super().__init__()
        self.settings = RateLimitAgentSettings()
        self.limiter = RateLimiter(RateLimitConfig(rules=()))

    async def apply_config(self, raw: Mapping[str, Any], base_dir: Path | None) -> None:
        limits, settings = parse_rate_limit_agent_config(raw)
        if limits != self.limiter.config:
            limiter = RateLimiter(limits)
            limiter.inherit(self.limiter)
            self.limiter = limiter
        self.settings = settings

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        facts = RateLimitRequest(
            method=request.method,
            path=request.path,
            client_ip=request.client_ip,
            route=request.route_id,
            headers={name: values[0] for name, values in request.headers.items() if values},
        )
        result = self.limiter.decide(facts, trio.current_time())
        if result.rule is None:
            return _ALLOW
        headers = tuple(render_rate_limit_headers(result, legacy=self.settings.legacy_headers))
        if not result.allowed:
            return block(
                self.settings.status, self.settings.body, headers=headers, audit=_audit(result)
            )
        ops = HeaderOps(set=headers) if self.settings.response_headers else HeaderOps()
        audit = _audit(result) if result.would_block or result.overflow else None
        return allow(response_headers=ops, audit=audit)

    def health(self) -> AgentHealth:
        rules = self.limiter.config.rules
        counts = self.limiter.counters.values()
        blocked = sum(c.blocked for c in counts)
        would = sum(c.would_block for c in counts)
        detail = (
            f"{len(rules)} rules{' (dry run)' if self.limiter.config.dry_run else ''}, "
            f"{len(self.limiter)} keys of {self.limiter.config.max_keys}; "
            f"blocked {blocked}, would block {would}"
        )
        return self.background_health(AgentHealth("ok", detail))


def _audit(result: RateLimitResult) -> Audit:
    tags = ["ratelimit"]
    if result.would_block:
        tags.append("dry-run")
    if result.overflow:
        tags.append("overflow")
    verb = "would exceed" if result.would_block else "exceeded"
    reason = (
        f"rate limit {result.rule!r} {verb}: {result.limit} per {result.window:g}s window; "
        f"retry in {result.retry_after:.3g}s"
    )
    return Audit(tags=tuple(tags), rule_ids=(f"ratelimit:{result.rule}",), reason=reason)
