"""The fallback engine: libinjection plus a compact RE2 rule set, for hosts without ModSecurity.

Same interface and config as the ModSecurity engine, weaker coverage (see docs/waf.md for
measured rates). Every step is linear in the request size: Python's own parsers, libinjection's
tokenizer and RE2 automata; no backtracking regex ever sees request data.

Per value, all patterns of one *view* run in a single pass through an ``re2.Set``; only the
patterns that matched are then re-run alone to extract the matched text for the finding.
Values made only of letters and digits skip the pattern pass: no rule can match them.

Thread-safety: compiled sets and patterns are immutable after construction; ``inspect`` keeps
its state on the stack, so one engine may serve many threads.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Iterable
from types import ModuleType

from sentinel_agents.waf.config import RouteRules, WafConfig
from sentinel_agents.waf.fallback_match import RuleIndex, cannot_match, decode
from sentinel_agents.waf.fallback_protocol import protocol_findings
from sentinel_agents.waf.fallback_rules import RULES, PatternRule
from sentinel_agents.waf.model import (
    BodyLimitAction,
    Finding,
    HttpRequest,
    Severity,
    WafMode,
    WafVerdict,
)
from sentinel_agents.waf.request_parts import Kind, Target, split_request
from sentinel_agents.waf.verdicts import body_too_large, summarize


def _load_libinjection() -> ModuleType | None:
    try:
        return importlib.import_module("libinjection")
    except ImportError:  # the engine still runs, on patterns alone; the description says so
        return None


libinjection = _load_libinjection()

ENGINE_NAME = "fallback"
LIBINJECTION_SQLI_ID = 1942100
LIBINJECTION_XSS_ID = 1941100
BODY_ERROR_ID = 1920010
_SQLI_KINDS = frozenset({Kind.ARG, Kind.ARG_NAME, Kind.COOKIE, Kind.COOKIE_NAME})
_SQLI_HEADERS = frozenset({"user-agent", "referer"})
_MAX_VALUE = 64 * 1024


class FallbackEngine:
    """Inspects requests with libinjection and RE2 patterns; no native WAF library needed."""

    name = ENGINE_NAME

    def __init__(
        self,
        config: WafConfig,
        rules: Iterable[PatternRule] = RULES,
        degraded_reason: str = "",
    ) -> None:
        self.config = config
        self.degraded_reason = degraded_reason
        rule_list = list(rules)
        self._index = RuleIndex(rule_list)
        self.rule_count = len(rule_list)

    @property
    def description(self) -> str:
        """What is running and why, for the agent's health report."""
        parts = [f"fallback: {self.rule_count} RE2 rules"]
        parts.append("libinjection" if libinjection is not None else "no libinjection")
        if self.degraded_reason:
            parts.append(f"because {self.degraded_reason}")
        return ", ".join(parts)

    def inspect(self, request: HttpRequest) -> WafVerdict:
        """Score one request and decide, exactly as the ModSecurity engine would report it."""
        route = self.config.for_route(request.route)
        threshold = self.config.threshold_for(route)
        paranoia = self.config.paranoia_for(route)
        body = request.body
        if len(body) > self.config.body_limit:
            if self.config.body_limit_action is BodyLimitAction.REJECT:
                return body_too_large(self.name, self.config, threshold, len(body))
            body = body[: self.config.body_limit]
        parts = split_request(request, body)
        findings = protocol_findings(request, self.config, paranoia)
        if parts.body_error:
            findings.append(
                Finding(
                    rule_id=BODY_ERROR_ID,
                    message="Failed to parse request body",
                    severity=Severity.CRITICAL,
                    tags=("attack-protocol", "sentinel-fallback"),
                    matched_data=parts.body_error[:200],
                    target="REQUEST_BODY",
                )
            )
        for target in parts.targets:
            self._inspect_value(target, paranoia, findings)
        findings = _apply_exclusions(findings, route)
        return self._verdict(findings, threshold)

    def close(self) -> None:
        """Nothing to free; present so both engines can be handled alike."""

    # --- matching ----------------------------------------------------------------------------

    def _inspect_value(self, target: Target, paranoia: int, findings: list[Finding]) -> None:
        raw = target.value[:_MAX_VALUE]
        if cannot_match(raw):
            return
        decoded = decode(raw)
        for hit in self._index.match(target.kind, raw, decoded):
            if hit.rule.paranoia <= paranoia:
                findings.append(_pattern_finding(hit.rule, target, hit.matched))
        if libinjection is not None:
            self._libinjection(libinjection, target, decoded, findings)

    def _libinjection(
        self, lib: ModuleType, target: Target, decoded: str, findings: list[Finding]
    ) -> None:
        header = target.kind is Kind.HEADER
        header_name = target.name.partition(":")[2].lower() if header else ""
        if (target.kind in _SQLI_KINDS or header_name in _SQLI_HEADERS) and _may_be_sqli(decoded):
            result = lib.is_sql_injection(decoded)
            if result["is_sqli"]:
                findings.append(
                    Finding(
                        rule_id=LIBINJECTION_SQLI_ID,
                        message="SQL Injection Attack Detected via libinjection",
                        severity=Severity.CRITICAL,
                        tags=("attack-sqli", "sentinel-fallback"),
                        matched_data=f"fingerprint {result['fingerprint']}: {decoded[:160]}",
                        target=target.name,
                    )
                )
        if (target.kind in _SQLI_KINDS or header_name == "referer") and _may_be_xss(decoded):
            text = html.unescape(decoded) if "&" in decoded else decoded
            if lib.is_xss(text)["is_xss"]:
                findings.append(
                    Finding(
                        rule_id=LIBINJECTION_XSS_ID,
                        message="XSS Attack Detected via libinjection",
                        severity=Severity.CRITICAL,
                        tags=("attack-xss", "sentinel-fallback"),
                        matched_data=decoded[:200],
                        target=target.name,
                    )
                )

    def _verdict(self, findings: list[Finding], threshold: int) -> WafVerdict:
        unique: list[Finding] = []
        seen: set[int] = set()
        for finding in findings:
            if finding.rule_id not in seen:
                seen.add(finding.rule_id)
                unique.append(finding)
        score = sum(f.score for f in unique)
        would_block = score >= threshold
        return WafVerdict(
            engine=self.name,
            mode=self.config.mode,
            blocked=would_block and self.config.mode is WafMode.BLOCK,
            would_block=would_block,
            status=self.config.block_status if would_block else 200,
            anomaly_score=score,
            threshold=threshold,
            findings=tuple(unique),
            reason=summarize(unique, score, threshold, would_block),
        )


def _pattern_finding(rule: PatternRule, target: Target, matched: str) -> Finding:
    return Finding(
        rule_id=rule.rule_id,
        message=rule.message,
        severity=rule.severity,
        tags=(rule.tag, f"paranoia-level/{rule.paranoia}", "sentinel-fallback"),
        matched_data=f"Matched Data: {matched[:100]} found within {target.name}",
        target=target.name,
    )


def _apply_exclusions(findings: list[Finding], route: RouteRules | None) -> list[Finding]:
    """Drop what a route switched off; CRS ids match through each rule's aliases."""
    if route is None:
        return findings
    removed_ids = set(route.remove_rule_ids)
    removed_tags = set(route.remove_tags)
    kept: list[Finding] = []
    for finding in findings:
        ids = _rule_ids(finding.rule_id)
        if ids & removed_ids or removed_tags.intersection(finding.tags):
            continue
        if any(
            t.rule_id in ids and _target_matches(t.target, finding.target)
            for t in route.remove_targets
        ):
            continue
        kept.append(finding)
    return kept


def _target_matches(excluded: str, target: str) -> bool:
    if ":" not in excluded:
        return target == excluded or target.startswith(excluded + ":")
    return target.lower() == excluded.lower()


_ALIASES: dict[int, tuple[int, ...]] = {
    LIBINJECTION_SQLI_ID: (942100,),
    LIBINJECTION_XSS_ID: (941100,),
    BODY_ERROR_ID: (9999010,),
    **{rule.rule_id: rule.aliases for rule in RULES},
}


def _rule_ids(rule_id: int) -> set[int]:
    """A finding's own id and the CRS ids it stands for (protocol checks: id - 1000000)."""
    aliases = _ALIASES.get(rule_id)
    if aliases is None and 1_900_000 <= rule_id < 2_000_000:
        aliases = (rule_id - 1_000_000,)
    return {rule_id, *(aliases or ())}


# libinjection needs an operator, a quote, a comment or two tokens to report SQL injection,
# and markup, a quote or an attribute to report XSS; values without any skip the call.
_SQLI_CHARS = frozenset("'\"`;()#-/*=|&!<>,:@ \t\r\n")
_XSS_CHARS = frozenset("<>\"'`=")


def _may_be_sqli(value: str) -> bool:
    return not _SQLI_CHARS.isdisjoint(value)


def _may_be_xss(value: str) -> bool:
    return not _XSS_CHARS.isdisjoint(value)
