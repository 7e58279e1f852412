"""A loaded rule set: rules with checked conditions, output templates and stateful parts.

Everything here is data, built by `rules_loader` from `configs/rules/*.toml` and compiled by
the engine per event kind. A rule is one of three shapes:

- plain: the condition matches one event -> one alert;
- `threshold`: `count` matching events (or distinct values of one field) within `window`
  seconds, grouped `by` fields -> one alert (a port scan, a crash loop);
- `sequence`: every step's condition matched within `window` seconds (in step order when
  `ordered`), steps joined on their `key` fields -> one alert with the steps as its chain
  (a `../` request and the upstream's read of a file outside its root).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sentinel_stack.detect.alert import Severity
from sentinel_stack.detect.expr import Checked, ExprError, FieldSpec, Pos
from sentinel_stack.detect.expr.fields import FIELDS

__all__ = [
    "TACTICS",
    "Rule",
    "RuleSet",
    "Sequence",
    "SequenceStep",
    "Template",
    "Threshold",
    "parse_template",
]

TACTICS = frozenset(
    {
        "reconnaissance",
        "resource-development",
        "initial-access",
        "execution",
        "persistence",
        "privilege-escalation",
        "defense-evasion",
        "credential-access",
        "discovery",
        "lateral-movement",
        "collection",
        "command-and-control",
        "exfiltration",
        "impact",
    }
)
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")

# Template placeholders that are not event fields: what a threshold or sequence counted.
MATCH_FIELDS = {
    "match.count": "events (or distinct values) that made a threshold fire; steps of a sequence",
    "match.values": "the distinct values a threshold counted (first 20)",
    "match.window": "the rule's window in seconds",
}


@dataclass(frozen=True, slots=True)
class Template:
    """An output template: literal text and fields, ``%proc.name`` or ``{proc.name}``."""

    text: str
    parts: tuple[str | FieldSpec, ...]

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return tuple(dict.fromkeys(p for p in self.parts if isinstance(p, FieldSpec)))


_PLACEHOLDER = re.compile(r"%%|%([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)|\{([a-z][a-z0-9_.]*)\}")


def parse_template(text: str, pos: Pos) -> Template:
    """Split a template; unknown fields are an ExprError at their column."""
    parts: list[str | FieldSpec] = []
    last = 0
    for found in _PLACEHOLDER.finditer(text):
        parts.append(text[last : found.start()])
        last = found.end()
        if found.group(0) == "%%":
            parts.append("%")
            continue
        name = found.group(1) or found.group(2)
        spec = FIELDS.get(name) or _match_field(name)
        if spec is None:
            from sentinel_stack.detect.expr import suggest

            raise ExprError(
                f"unknown field `{name}` in the output",
                Pos(pos.line, pos.col + found.start(), pos.origin),
                suggest(name, [*FIELDS, *MATCH_FIELDS], "fields"),
            )
        parts.append(spec)
    parts.append(text[last:])
    return Template(text, tuple(p for p in parts if p != ""))


def _match_field(name: str) -> FieldSpec | None:
    if name not in MATCH_FIELDS:
        return None
    return FieldSpec(name, "str", MATCH_FIELDS[name], frozenset())


@dataclass(frozen=True, slots=True)
class Threshold:
    count: int
    window: float
    by: tuple[FieldSpec, ...] = ()
    distinct: FieldSpec | None = None


@dataclass(frozen=True, slots=True)
class SequenceStep:
    name: str
    condition: Checked
    key: FieldSpec | None = None


@dataclass(frozen=True, slots=True)
class Sequence:
    window: float
    steps: tuple[SequenceStep, ...]
    ordered: bool = True


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    condition: Checked | None  # None only for sequences (their steps carry conditions)
    severity: Severity
    output: Template
    tactic: str | None = None
    technique: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    dedup_by: tuple[FieldSpec, ...] | None = None  # None: the rendered output is the key
    dedup_window: float | None = None
    threshold: Threshold | None = None
    sequence: Sequence | None = None
    file: str = "<rules>"
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    lists: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    macros: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def rule(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None
