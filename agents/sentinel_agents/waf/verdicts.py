"""Verdict pieces both engines share, so that they report alike for the same situation."""

from __future__ import annotations

from collections.abc import Sequence

from sentinel_agents.waf.config import WafConfig
from sentinel_agents.waf.model import Finding, Severity, WafMode, WafVerdict

# Sentinel's own rule ids, outside any published rule set.
BODY_LIMIT_RULE_ID = 1_000_001
BODY_LIMIT_STATUS = 413


def body_too_large(engine: str, config: WafConfig, threshold: int, size: int) -> WafVerdict:
    """The verdict for a body over the inspection limit under ``BodyLimitAction.REJECT``.

    Decided before any rule runs: inspecting a prefix would let a payload hide past the limit.
    """
    finding = Finding(
        rule_id=BODY_LIMIT_RULE_ID,
        message="Request body larger than the inspection limit",
        severity=Severity.CRITICAL,
        tags=("attack-protocol", "sentinel-body-limit"),
        matched_data=f"{size} bytes > limit {config.body_limit}",
        target="REQUEST_BODY",
    )
    return WafVerdict(
        engine=engine,
        mode=config.mode,
        blocked=config.mode is WafMode.BLOCK,
        would_block=True,
        status=BODY_LIMIT_STATUS,
        anomaly_score=finding.score,
        threshold=threshold,
        findings=(finding,),
        reason=f"request body of {size} bytes exceeds the {config.body_limit}-byte limit",
    )


def summarize(findings: Sequence[Finding], score: int, threshold: int, would_block: bool) -> str:
    """One line a person reads in the access log: why the request was (or would be) blocked."""
    if not findings:
        return ""
    kinds = sorted(
        {t[len("attack-") :] for f in findings for t in f.tags if t.startswith("attack-")}
    )
    what = ", ".join(kinds) if kinds else "rule matches"
    relation = ">=" if score >= threshold else "<"
    verb = "blocked" if would_block else "allowed"
    return f"{verb}: anomaly score {score} {relation} {threshold} ({what})"
