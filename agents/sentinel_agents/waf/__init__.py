"""Web application firewall engines for the WAF agent.

``create_engine(WafConfig(...))`` returns the ModSecurity v3 engine (OWASP CRS through
libmodsecurity's C API) when the host has it, else the pure-Python fallback (libinjection and
RE2). Both take an :class:`HttpRequest` and return a :class:`WafVerdict`.
"""

from sentinel_agents.waf.config import (
    CrsUnavailable,
    EngineChoice,
    RouteRules,
    TargetExclusion,
    WafConfig,
    WafConfigError,
)
from sentinel_agents.waf.engine import WafEngine, create_engine
from sentinel_agents.waf.fallback_engine import FallbackEngine
from sentinel_agents.waf.model import (
    BodyLimitAction,
    Finding,
    HttpRequest,
    Severity,
    WafMode,
    WafVerdict,
)
from sentinel_agents.waf.modsec_ffi import ModSecurityUnavailable

__all__ = [
    "BodyLimitAction",
    "CrsUnavailable",
    "EngineChoice",
    "FallbackEngine",
    "Finding",
    "HttpRequest",
    "ModSecurityUnavailable",
    "RouteRules",
    "Severity",
    "TargetExclusion",
    "WafConfig",
    "WafConfigError",
    "WafEngine",
    "WafMode",
    "WafVerdict",
    "create_engine",
]
