"""How a WAF engine is set up: mode, paranoia, threshold, limits, rule sources, route exclusions.

One config drives both engines, so switching from ModSecurity to the fallback (because the
library is missing) changes what detects attacks, never what the operator asked for.
"""

from __future__ import annotations

import enum
from pathlib import Path

import msgspec

from sentinel_agents.waf.model import BodyLimitAction, WafMode

DEFAULT_CRS_SETUP = Path("/etc/modsecurity/crs/crs-setup.conf")
DEFAULT_CRS_RULES = Path("/usr/share/modsecurity-crs/rules")

# The CRS allows only GET HEAD POST OPTIONS; a stack that fronts JSON APIs needs the other REST
# verbs, or every PUT and DELETE becomes a false positive. TRACE, TRACK, CONNECT and made-up
# methods stay disallowed.
DEFAULT_ALLOWED_METHODS = ("GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE")


class EngineChoice(enum.StrEnum):
    """Which engine to build: the best available, or one in particular."""

    AUTO = "auto"
    MODSECURITY = "modsecurity"
    FALLBACK = "fallback"


class WafConfigError(ValueError):
    """A WAF setting is out of range or a rule source is unusable; the message says which."""


class CrsUnavailable(WafConfigError):
    """The OWASP CRS files are not where the config says; the fallback engine can stand in."""


class TargetExclusion(msgspec.Struct, frozen=True):
    """Stop one rule from looking at one variable, e.g. rule 942100 on ``ARGS:password``."""

    rule_id: int
    target: str


class RouteRules(msgspec.Struct, frozen=True, kw_only=True):
    """Per-route tuning: rules switched off and settings overridden for one proxy route.

    A route gets its own compiled rule set, so an exclusion written for ``/api/upload`` can
    never loosen the WAF on any other route.
    """

    route: str
    remove_rule_ids: tuple[int, ...] = ()
    remove_tags: tuple[str, ...] = ()
    remove_targets: tuple[TargetExclusion, ...] = ()
    paranoia_level: int | None = None
    anomaly_threshold: int | None = None


class WafConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Settings shared by every engine.

    ``paranoia_level`` 1-4 selects how aggressive the rules are (CRS semantics);
    ``anomaly_threshold`` is the inbound score at which a request is blocked (5 = one critical
    finding). ``body_limit`` bounds the bytes inspected; ``extra_rules_dir`` holds ``*.conf``
    ModSecurity rules loaded after the CRS detection rules and before its blocking evaluation,
    so scoring rules and exclusions written there take part in the decision.
    ``crs_supplement`` adds rules for attack classes the CRS 3.3 shipped by Debian predates
    (Log4Shell, prototype pollution, metadata SSRF, NoSQL operators, XXE).
    """

    engine: EngineChoice = EngineChoice.AUTO
    mode: WafMode = WafMode.BLOCK
    paranoia_level: int = 1
    anomaly_threshold: int = 5
    body_limit: int = 1024 * 1024
    body_limit_action: BodyLimitAction = BodyLimitAction.REJECT
    block_status: int = 403
    allowed_methods: tuple[str, ...] = DEFAULT_ALLOWED_METHODS
    crs_setup: Path = DEFAULT_CRS_SETUP
    crs_rules_dir: Path = DEFAULT_CRS_RULES
    extra_rules_dir: Path | None = None
    crs_supplement: bool = True
    library: str | None = None
    routes: tuple[RouteRules, ...] = ()

    def __post_init__(self) -> None:
        check_levels(self.paranoia_level, self.anomaly_threshold, where="waf")
        if self.body_limit <= 0:
            raise WafConfigError(
                f"waf.body_limit must be a positive byte count, not {self.body_limit}"
            )
        if not 400 <= self.block_status <= 599:
            raise WafConfigError(
                f"waf.block_status must be a 4xx or 5xx status, not {self.block_status}"
            )
        seen: set[str] = set()
        for index, route in enumerate(self.routes):
            where = f"waf.routes[{index}] ({route.route!r})"
            if route.route in seen:
                raise WafConfigError(f"{where}: route listed twice; merge the two entries")
            seen.add(route.route)
            check_levels(route.paranoia_level or 1, route.anomaly_threshold or 1, where=where)

    def for_route(self, route: str | None) -> RouteRules | None:
        """The tuning for one route, or None when the route has none."""
        if route is None:
            return None
        for rules in self.routes:
            if rules.route == route:
                return rules
        return None

    def paranoia_for(self, rules: RouteRules | None) -> int:
        """The paranoia level in force on a route."""
        return rules.paranoia_level if rules and rules.paranoia_level else self.paranoia_level

    def threshold_for(self, rules: RouteRules | None) -> int:
        """The anomaly threshold in force on a route."""
        if rules and rules.anomaly_threshold:
            return rules.anomaly_threshold
        return self.anomaly_threshold


def check_levels(paranoia_level: int, anomaly_threshold: int, *, where: str) -> None:
    """Reject paranoia levels outside 1-4 and thresholds below 1, naming the setting."""
    if not 1 <= paranoia_level <= 4:
        raise WafConfigError(f"{where}.paranoia_level must be 1, 2, 3 or 4, not {paranoia_level}")
    if anomaly_threshold < 1:
        raise WafConfigError(
            f"{where}.anomaly_threshold must be at least 1 (5 = one critical finding), "
            f"not {anomaly_threshold}"
        )
