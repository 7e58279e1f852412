"""Alerts as the TUI keeps them: newest first, ranked by severity, bounded.

Alerts come from several producers (the detector, the probe's own lost-events alert, …),
so the reader is lenient: it takes the fields it knows under the names producers use and
keeps the whole object for the detail view and for copying.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sentinel_stack.tui.format import printable

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
_RANK = {
    "critical": 0,
    "fatal": 0,
    "high": 1,
    "error": 1,
    "medium": 2,
    "warning": 2,
    "warn": 2,
    "low": 3,
    "notice": 3,
    "info": 4,
    "debug": 4,
}
_TECHNIQUE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b", re.IGNORECASE)


@dataclass(frozen=True)
class ChainStep:
    time: float
    kind: str
    summary: str


@dataclass(frozen=True)
class Alert:
    seq: int
    time: float
    severity: str  # as the producer wrote it
    level: str  # one of SEVERITY_ORDER
    rule: str
    technique: str
    tactic: str
    summary: str
    source: str
    chain: tuple[ChainStep, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER.index(self.level)


def severity_level(severity: str) -> str:
    return SEVERITY_ORDER[_RANK.get(severity.lower(), 2)]


def _text(value: Any) -> str:
    """A field as printable text: producers' strings may carry attacker-controlled bytes."""
    return printable(value if isinstance(value, str) else "" if value is None else str(value))


def _technique(raw: Mapping[str, Any]) -> tuple[str, str]:
    """(technique, tactic) from the usual spellings: flat, nested, lists, or tags."""
    technique = raw.get("technique") or raw.get("technique_id") or ""
    tactic = raw.get("tactic") or ""
    for key in ("attack", "mitre", "mitre_attack"):
        nested = raw.get(key)
        if isinstance(nested, Mapping):
            technique = technique or nested.get("technique") or nested.get("technique_id") or ""
            tactic = tactic or nested.get("tactic") or ""
        elif isinstance(nested, str) and not technique:
            technique = nested
        elif isinstance(nested, list) and nested and not technique:
            technique = nested[0] if isinstance(nested[0], str) else ""
    techniques = raw.get("techniques")
    if not technique and isinstance(techniques, list) and techniques:
        technique = _text(techniques[0])
    if not technique:
        for tag in raw.get("tags") or ():
            match = _TECHNIQUE.search(_text(tag))
            if match:
                technique = match.group(0).upper()
                break
    if isinstance(technique, Mapping):
        technique = technique.get("id") or technique.get("name") or ""
    return _text(technique), _text(tactic)


def _step(item: Any) -> ChainStep:
    if not isinstance(item, Mapping):
        return ChainStep(0.0, "", _text(item))
    kind = _text(item.get("kind") or item.get("type"))
    summary = _text(
        item.get("summary") or item.get("message") or item.get("description") or ""
    ).strip()
    if not summary:
        if "status" in item and "path" in item:
            summary = f"{item.get('method', '')} {item['path']} → {item['status']}".strip()
        else:
            what = item.get("path") or item.get("filename") or item.get("argv") or ""
            who = item.get("comm") or item.get("exe") or ""
            pid = item.get("pid")
            summary = " ".join(
                part for part in (_text(who), f"pid {pid}" if pid else "", _text(what)) if part
            )
    time_value = item.get("time")
    return ChainStep(
        float(time_value) if isinstance(time_value, int | float) else 0.0, kind, summary
    )


def alert_from(raw: Mapping[str, Any], seq: int) -> Alert:
    severity = _text(raw.get("severity") or raw.get("level") or "medium")
    technique, tactic = _technique(raw)
    chain_items: Iterable[Any] = ()
    for key in ("chain", "timeline", "evidence", "events"):
        value = raw.get(key)
        if isinstance(value, list):
            chain_items = value
            break
    time_value = raw.get("time")
    return Alert(
        seq=seq,
        time=float(time_value) if isinstance(time_value, int | float) else 0.0,
        severity=severity,
        level=severity_level(severity),
        rule=_text(raw.get("rule") or raw.get("rule_id") or raw.get("name") or "?"),
        technique=technique,
        tactic=tactic,
        summary=_text(raw.get("summary") or raw.get("message") or raw.get("description")),
        source=_text(raw.get("source")),
        chain=tuple(sorted((_step(i) for i in chain_items), key=lambda s: s.time)),
        raw=raw,
    )


class AlertBook:
    """The newest ``capacity`` alerts and a count of every alert by severity since attach.

    A threat chain is re-sent by the detector each time it grows (same ``chain_id``, more
    steps, maybe a higher severity): the book keeps one entry per chain, the latest, moved
    to the front. Remediation records are kept beside the alert they answer (``alert_id``).
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.alerts: deque[Alert] = deque(maxlen=capacity)
        self.counts: Counter[str] = Counter()
        self._seq = 0
        self._remediations: OrderedDict[str, list[Mapping[str, Any]]] = OrderedDict()
        self._capacity = capacity

    def add(self, raw: Mapping[str, Any]) -> Alert:
        self._seq += 1
        alert = alert_from(raw, self._seq)
        chain_id = raw.get("chain_id")
        if chain_id:
            for old in self.alerts:
                if old.raw.get("chain_id") == chain_id:
                    self.alerts.remove(old)
                    self.counts[old.level] -= 1
                    break
        self.alerts.appendleft(alert)
        self.counts[alert.level] += 1
        return alert

    def add_remediation(self, raw: Mapping[str, Any]) -> None:
        alert_id = _text(raw.get("alert_id"))
        if not alert_id:
            return
        self._remediations.setdefault(alert_id, []).append(raw)
        self._remediations.move_to_end(alert_id)
        while len(self._remediations) > self._capacity:
            self._remediations.popitem(last=False)

    def remediations(self, alert: Alert) -> list[Mapping[str, Any]]:
        """What remediation ran for ``alert`` (empty when none, or none was enabled)."""
        return list(self._remediations.get(_text(alert.raw.get("id")), ()))

    def listing(self, by_severity: bool = False, text: str = "") -> list[Alert]:
        """Newest first; with ``by_severity``, the most severe first and newest within each."""
        needle = text.lower()
        found = [
            a
            for a in self.alerts
            if not needle
            or needle in f"{a.severity} {a.rule} {a.technique} {a.summary} {a.source}".lower()
        ]
        if by_severity:
            found.sort(key=lambda a: a.rank)  # stable: newest first within a severity
        return found

    def find(self, seq: int) -> Alert | None:
        for alert in self.alerts:
            if alert.seq == seq:
                return alert
        return None
