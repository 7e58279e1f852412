"""What the ModSecurity engine loads, in which order, and what each rule id means.

Pure functions over config and file lists: the engine module does the loading. Kept apart so
the generated directives and the load order can be read, diffed and unit-tested without the
shared library.

Load order (each step must precede the next for the CRS to behave):

1. engine directives (rule engine mode, body access and limits, body processors);
2. the CRS ``crs-setup.conf``, then our ``tx.*`` settings (paranoia, threshold, methods), which
   the CRS initialisation only defaults when they are unset;
3. the site's ``REQUEST-900`` exclusions, the CRS detection rules (``REQUEST-9xx``), then
   our supplement for attack classes CRS 3.3 predates (see ``modsec_supplement``);
4. ``extra_rules_dir/*.conf`` and the route's exclusions, *before* ``REQUEST-949`` so that
   their scores and removals take part in the blocking decision;
5. ``REQUEST-949`` (the anomaly-score verdict), the site's ``RESPONSE-999`` exclusions;
6. our phase-5 reporter, which logs ``tx.anomaly_score`` so the engine can read the score even
   when phase 2 ended in a deny.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import msgspec

from sentinel_agents.waf.config import CrsUnavailable, RouteRules, WafConfig
from sentinel_agents.waf.model import BodyLimitAction, Severity, WafMode
from sentinel_agents.waf.modsec_supplement import SUPPLEMENT

# Rule ids this module generates. 9_999_xxx lies above the CRS's 900000-999999 block and below
# anything a site is likely to pick, so it collides with neither.
SCORE_RULE_ID = 9_999_001
BODY_ERROR_RULE_ID = 9_999_010
MULTIPART_STRICT_RULE_ID = 9_999_011
MULTIPART_BOUNDARY_RULE_ID = 9_999_012
ENGINE_ERROR_RULE_ID = 9_999_013
SCORE_MESSAGE = "sentinel: inbound anomaly score"

# CRS rule ids that report on the verdict rather than detect something.
VERDICT_RULE_IDS = frozenset({949110, 949111, 959100, 959101, 980130, 980140, SCORE_RULE_ID})

_SEVERITY_NAMES = {s.name: s for s in Severity}


class RuleSource(msgspec.Struct, frozen=True):
    """One unit handed to ``msc_rules_add`` (inline text) or ``msc_rules_add_file`` (a path)."""

    kind: Literal["inline", "file"]
    name: str
    text: str = ""


class CrsFiles(msgspec.Struct, frozen=True, kw_only=True):
    """The OWASP CRS as installed: setup, detection files, the blocking file, site exclusions."""

    setup: Path
    detection: tuple[Path, ...]
    blocking: Path
    before: Path | None = None
    after: Path | None = None


class RuleInfo(msgspec.Struct, frozen=True):
    """Static facts about one rule, read from its definition rather than from the log line.

    ModSecurity 3.0.9 drops the tags from the log line of ``multiMatch`` rules, so the log
    alone cannot tell what kind of attack a finding is; the definition can.
    """

    rule_id: int
    message: str = ""
    severity: Severity | None = None
    tags: tuple[str, ...] = ()
    disruptive: bool = False


def discover_crs(config: WafConfig) -> CrsFiles:
    """Find the CRS files the config points at, or say precisely what is missing."""
    setup = config.crs_setup
    rules_dir = config.crs_rules_dir
    if not setup.is_file():
        raise CrsUnavailable(
            f"waf.crs_setup: {setup} does not exist; install Debian's modsecurity-crs "
            "or point waf.crs_setup at a crs-setup.conf"
        )
    request_files = sorted(rules_dir.glob("REQUEST-9*.conf")) if rules_dir.is_dir() else []
    blocking = [p for p in request_files if p.name.startswith("REQUEST-949")]
    if not blocking:
        raise CrsUnavailable(
            f"waf.crs_rules_dir: no REQUEST-949-BLOCKING-EVALUATION.conf in {rules_dir}; "
            "point it at the CRS rules/ directory"
        )
    detection = tuple(p for p in request_files if p not in blocking)
    before = setup.parent / "REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf"
    after = setup.parent / "RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf"
    return CrsFiles(
        setup=setup,
        detection=detection,
        blocking=blocking[0],
        before=before if before.is_file() else None,
        after=after if after.is_file() else None,
    )


def engine_directives(config: WafConfig) -> str:
    """The ``modsecurity.conf`` part: engine mode, body handling, body processors."""
    engine = "On" if config.mode is WafMode.BLOCK else "DetectionOnly"
    action = "Reject" if config.body_limit_action is BodyLimitAction.REJECT else "ProcessPartial"
    # Body errors score like a critical finding instead of denying outright, so that the
    # anomaly threshold, detect-only mode and route exclusions govern them as everything else.
    score = "setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}'"
    return f"""\
SecRuleEngine {engine}
SecRequestBodyAccess On
SecRequestBodyLimit {config.body_limit}
SecRequestBodyNoFilesLimit {config.body_limit}
SecRequestBodyLimitAction {action}
SecResponseBodyAccess Off
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
SecArgumentSeparator &
SecCookieFormat 0
SecAuditEngine Off
SecUploadKeepFiles Off
SecRule REQUEST_HEADERS:Content-Type "@rx (?:application(?:/soap\\+|/)|text/)xml" \
  "id:9999002,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/(?:[a-z0-9.+-]+\\+)?json" \
  "id:9999003,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" \
  "id:{BODY_ERROR_RULE_ID},phase:2,t:none,pass,log,severity:'CRITICAL',\
msg:'Failed to parse request body',logdata:'%{{reqbody_error_msg}}',\
tag:'attack-protocol',{score}"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
  "id:{MULTIPART_STRICT_RULE_ID},phase:2,t:none,pass,log,severity:'CRITICAL',\
msg:'Multipart request body failed strict validation',tag:'attack-protocol',{score}"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \
  "id:{MULTIPART_BOUNDARY_RULE_ID},phase:2,t:none,pass,log,severity:'CRITICAL',\
msg:'Multipart parser detected a possible unmatched boundary',tag:'attack-protocol',{score}"
SecRule TX:/^MSC_/ "!@streq 0" \
  "id:{ENGINE_ERROR_RULE_ID},phase:2,t:none,pass,log,severity:'CRITICAL',\
msg:'ModSecurity internal error flagged: %{{MATCHED_VAR_NAME}}',{score}"
"""


def crs_settings(config: WafConfig, paranoia_level: int, threshold: int) -> str:
    """The ``tx.*`` settings the CRS reads; set before REQUEST-901 so it keeps them."""
    methods = " ".join(config.allowed_methods)
    return f"""\
SecAction "id:9999020,phase:1,pass,nolog,t:none,\
setvar:tx.paranoia_level={paranoia_level},\
setvar:tx.executing_paranoia_level={paranoia_level}"
SecAction "id:9999021,phase:1,pass,nolog,t:none,\
setvar:tx.inbound_anomaly_score_threshold={threshold},\
setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:9999022,phase:1,pass,nolog,t:none,setvar:'tx.allowed_methods={methods}'"
"""


def route_exclusions(route: RouteRules) -> str:
    """Configure-time removals for one route's own rule set."""
    lines = [f"SecRuleRemoveById {rule_id}" for rule_id in route.remove_rule_ids]
    lines += [f'SecRuleRemoveByTag "{_quote(tag)}"' for tag in route.remove_tags]
    lines += [
        f'SecRuleUpdateTargetById {t.rule_id} "!{_quote(t.target)}"' for t in route.remove_targets
    ]
    return "\n".join(lines) + ("\n" if lines else "")


SCORE_REPORTER = (
    f'SecAction "id:{SCORE_RULE_ID},phase:5,pass,log,t:none,'
    f"msg:'{SCORE_MESSAGE}',logdata:'%{{tx.anomaly_score}}'\"\n"
)


def plan_rule_sources(
    config: WafConfig,
    crs: CrsFiles,
    extra_rules: tuple[Path, ...],
    route: RouteRules | None,
) -> tuple[RuleSource, ...]:
    """Every rule source for one rule set, in load order (see the module docstring)."""
    sources = [
        RuleSource("inline", "<sentinel engine directives>", engine_directives(config)),
        RuleSource("file", str(crs.setup)),
        RuleSource(
            "inline",
            "<sentinel CRS settings>",
            crs_settings(config, config.paranoia_for(route), config.threshold_for(route)),
        ),
    ]
    if crs.before is not None:
        sources.append(RuleSource("file", str(crs.before)))
    sources += [RuleSource("file", str(p)) for p in crs.detection]
    if config.crs_supplement:
        sources.append(RuleSource("inline", "<sentinel CRS supplement>", SUPPLEMENT))
    sources += [RuleSource("file", str(p)) for p in extra_rules]
    if route is not None and (exclusions := route_exclusions(route)):
        sources.append(RuleSource("inline", f"<route {route.route!r} exclusions>", exclusions))
    sources.append(RuleSource("file", str(crs.blocking)))
    if crs.after is not None:
        sources.append(RuleSource("file", str(crs.after)))
    sources.append(RuleSource("inline", "<sentinel score reporter>", SCORE_REPORTER))
    return tuple(sources)


# --- the rule catalog: parsing trusted rule files, never request data ---------------------------

_ID = re.compile(r"\bid:'?(\d+)")
_TAG = re.compile(r"\btag:'([^']*)'")
_MSG = re.compile(r"\bmsg:'([^']*)'")
_SEVERITY = re.compile(r"\bseverity:'?([A-Za-z0-9]+)")
_DISRUPTIVE = re.compile(r"(?:^|[\",])\s*(?:deny|drop|redirect(?::|\b))")


def parse_rule_catalog(text: str) -> dict[int, RuleInfo]:
    """Rule id → static facts, from ModSecurity rule text (continuation lines joined)."""
    catalog: dict[int, RuleInfo] = {}
    for directive in _directives(text):
        if not directive.startswith(("SecRule ", "SecAction ")):
            continue
        found = _ID.search(directive)
        if found is None:
            continue  # a chained continuation: its facts belong to the chain's head
        rule_id = int(found.group(1))
        msg = _MSG.search(directive)
        sev = _SEVERITY.search(directive)
        catalog[rule_id] = RuleInfo(
            rule_id=rule_id,
            message=msg.group(1) if msg else "",
            severity=_severity(sev.group(1)) if sev else None,
            tags=tuple(_TAG.findall(directive)),
            disruptive=_DISRUPTIVE.search(directive) is not None,
        )
    return catalog


def _directives(text: str) -> list[str]:
    directives: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        directives.append(current + line)
        current = ""
    if current:
        directives.append(current)
    return directives


def _severity(token: str) -> Severity | None:
    if token.isdigit():
        value = int(token)
        return Severity(value) if 0 <= value <= 7 else None
    return _SEVERITY_NAMES.get(token.upper())


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
