"""Choosing a WAF engine: ModSecurity when the host has it, the fallback otherwise.

The choice is made once, at start-up, and reported (``engine.name``, ``engine.description``)
so that an operator can see in the health output that a degraded engine is running and why.
A broken configuration (bad rule syntax, impossible settings) is never papered over by
falling back: only a missing library or missing CRS files are.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sentinel_agents.waf.config import CrsUnavailable, EngineChoice, WafConfig
from sentinel_agents.waf.fallback_engine import FallbackEngine
from sentinel_agents.waf.model import HttpRequest, WafVerdict
from sentinel_agents.waf.modsec_ffi import ModSecurityUnavailable

log = logging.getLogger(__name__)


class WafEngine(Protocol):
    """What the WAF agent needs from an engine. ``inspect`` must be safe to call from threads."""

    @property
    def name(self) -> str:
        """``"modsecurity"`` or ``"fallback"``."""
        ...

    @property
    def description(self) -> str:
        """Version, rule count and, for a fallback, the reason it is running."""
        ...

    def inspect(self, request: HttpRequest) -> WafVerdict:
        """Decide about one request."""
        ...

    def close(self) -> None:
        """Release native resources; no ``inspect`` may be in flight."""
        ...


def create_engine(config: WafConfig) -> WafEngine:
    """The engine ``config.engine`` asks for; ``auto`` falls back when ModSecurity is absent."""
    if config.engine is EngineChoice.FALLBACK:
        return FallbackEngine(config)
    # Imported here so that a host without libmodsecurity never loads the ctypes layer's
    # callers by accident; the binding itself loads the library lazily, in the constructor.
    from sentinel_agents.waf.modsec_engine import ModSecurityEngine

    try:
        return ModSecurityEngine(config)
    except (ModSecurityUnavailable, CrsUnavailable) as exc:
        if config.engine is EngineChoice.MODSECURITY:
            raise
        log.warning("WAF: ModSecurity unavailable, running the fallback engine: %s", exc)
        return FallbackEngine(config, degraded_reason=str(exc))
