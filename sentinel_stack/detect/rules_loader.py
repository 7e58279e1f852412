"""Load `configs/rules/*.toml` into a `RuleSet`, reporting every problem with file:line:col.

Files load in name order; `lists` and `macros` are shared by all files (a name defined
twice is an error; `append_lists` extends one). A `[[rules]]` entry whose id an earlier
entry defined, and that has no condition, overrides that rule: `enabled`, `severity`,
`dedup_window`, `dedup_by`, and `exceptions` (appended) — how a local file tunes the
defaults without copying them. Positions: the line of the rule's table, and for conditions
the line and column inside the file (found by searching the condition's text after the
rule's header, so nested tables and multi-line strings are placed right).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from sentinel_stack.config.durations import parse_duration
from sentinel_stack.detect.alert import SEVERITIES
from sentinel_stack.detect.expr import (
    FIELDS,
    Checked,
    Definitions,
    ExprError,
    FieldSpec,
    Pos,
    check,
    suggest,
)
from sentinel_stack.detect.expr import syntax as ast
from sentinel_stack.detect.expr.compiler import Junction, Negation
from sentinel_stack.detect.rules import (
    TACTICS,
    TECHNIQUE,
    Rule,
    RuleSet,
    Sequence,
    SequenceStep,
    Threshold,
    parse_template,
)
from sentinel_stack.detect.rules_schema import (
    RuleIssue,
    RulesError,
    RuleSource,
    RuleSpec,
    exception_node,
    read_rule_file,
    schema_issue,
)

__all__ = ["RuleIssue", "RulesError", "bundled_rules_dir", "load_rules", "rule_files"]

_OVERRIDABLE = {"id", "enabled", "severity", "exceptions", "dedup_window", "dedup_by"}


def bundled_rules_dir() -> Path:
    """The repository's configs/rules, found relative to the installed package."""
    import sentinel_stack

    return Path(sentinel_stack.__file__).resolve().parents[1] / "configs" / "rules"


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in rules_dir.glob("*.toml") if p.is_file())


def load_rules(
    paths: Iterable[Path] | Path,
    builtin_lists: Mapping[str, Iterable[str | int]] | None = None,
) -> RuleSet:
    """Every `*.toml` of a directory (or the given files) -> RuleSet; RulesError lists all."""
    if isinstance(paths, Path):
        if not paths.is_dir():
            raise RulesError([RuleIssue("not a directory of rule files", str(paths))])
        files = rule_files(paths)
    else:
        files = list(paths)
    texts = []
    for path in files:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise RulesError([RuleIssue(f"cannot read: {exc.strerror}", str(path))]) from exc
    return load_rule_texts(texts, builtin_lists)


def load_rule_texts(
    texts: Iterable[tuple[str, str]],
    builtin_lists: Mapping[str, Iterable[str | int]] | None = None,
) -> RuleSet:
    builder = _Builder({k: tuple(v) for k, v in (builtin_lists or {}).items()})
    sources = [s for s in (builder.read(path, text) for path, text in texts) if s is not None]
    builder.collect_definitions(sources)
    for source in sources:
        builder.collect_rules(source)
    if builder.issues:
        raise RulesError(builder.issues)
    return RuleSet(
        rules=tuple(builder.rules.values()),
        lists=dict(builder.lists),
        macros=builder.macro_texts,
        files=tuple(s.path for s in sources),
    )


class _Builder:
    def __init__(self, builtin: dict[str, tuple[str | int, ...]]) -> None:
        self.builtin = builtin
        self.lists: dict[str, tuple[Any, ...]] = dict(builtin)
        self.macros: dict[str, ast.Node] = {}
        self.macro_texts: dict[str, str] = {}
        self.defined_at: dict[str, str] = {}
        self.rules: dict[str, Rule] = {}
        self.issues: list[RuleIssue] = []
        self.defs = Definitions(self.lists, self.macros)

    def read(self, path: str, text: str) -> RuleSource | None:
        found = read_rule_file(path, text)
        if isinstance(found, RuleIssue):
            self.issues.append(found)
            return None
        return found

    def collect_definitions(self, sources: list[RuleSource]) -> None:
        for source in sources:
            for name, values in source.data.lists.items():
                self._define(source, "lists", name)
                self.lists[name] = tuple(values)
        for source in sources:
            for name, values in source.data.append_lists.items():
                if name not in self.lists:
                    self._issue(
                        source,
                        f"append_lists.{name}: no list `{name}` to append to",
                        source.line_of("append_lists", name),
                        hint=suggest(name, self.lists, "lists"),
                    )
                    continue
                self.lists[name] = (*self.lists[name], *values)
        for source in sources:
            for name, text in source.data.macros.items():
                line = self._define(source, "macros", name)
                origin = source.origin(text, line, f"macro {name}")
                try:
                    self.macros[name] = ast.parse(text, origin)
                    self.macro_texts[name] = text
                except ExprError as exc:
                    self._expr_issue(exc)
        for name, node in self.macros.items():
            try:
                check(node, self.defs)
            except ExprError as exc:
                self._expr_issue(exc)
                self.macros[name] = node

    def _define(self, source: RuleSource, table: str, name: str) -> int | None:
        line = source.line_of(table, name)
        key = f"{table}.{name}"
        if name in self.builtin and table == "lists":
            self._issue(
                source,
                f"`{name}` is a built-in list (filled from the stack's config)",
                line,
                hint=f"extend it with append_lists.{name} = [...]",
            )
        elif key in self.defined_at:
            self._issue(
                source,
                f"{table[:-1]} `{name}` is defined twice (also at {self.defined_at[key]})",
                line,
                hint="rename one, or use append_lists to extend a list",
            )
        self.defined_at.setdefault(key, f"{source.path}:{line}")
        return line

    def _issue(
        self,
        source: RuleSource,
        message: str,
        line: int | None,
        col: int | None = None,
        hint: str = "",
        rule: str | None = None,
    ) -> None:
        self.issues.append(RuleIssue(message, source.path, line, col, hint, rule))

    def _expr_issue(self, exc: ExprError, rule: str | None = None) -> None:
        self.issues.append(RuleIssue(exc.message, exc.file, exc.line, exc.col, exc.hint, rule))

    def collect_rules(self, source: RuleSource) -> None:
        for index, raw in enumerate(source.data.rules):
            line = source.line_of("rules", index)
            rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
            try:
                spec = msgspec.convert(raw, RuleSpec)
            except msgspec.ValidationError as exc:
                self.issues.append(
                    schema_issue(
                        exc,
                        source.path,
                        source.text,
                        ("rules", index),
                        ", ".join(RuleSpec.__struct_fields__),
                        rule_id,
                        line,
                    )
                )
                continue
            if spec.id in self.rules and spec.condition is None and spec.sequence is None:
                self._override(source, spec, line)
                continue
            try:
                rule = self._rule(source, spec, line)
            except ExprError as exc:
                self._expr_issue(exc, spec.id)
                continue
            except ValueError as exc:
                self._issue(source, str(exc), line, rule=spec.id)
                continue
            if spec.id in self.rules:
                self._issue(
                    source,
                    f"rule id defined twice (also at {self.rules[spec.id].where})",
                    line,
                    hint="to change a rule, give only `id` and the keys to change "
                    "(enabled, severity, exceptions)",
                    rule=spec.id,
                )
                continue
            self.rules[spec.id] = rule

    def _rule(self, source: RuleSource, spec: RuleSpec, line: int | None) -> Rule:
        if spec.condition is None and spec.sequence is None:
            raise ValueError("a rule needs a `condition` (or a `sequence` of steps)")
        if spec.severity not in SEVERITIES:
            raise ValueError(f"severity {spec.severity!r}: use one of {', '.join(SEVERITIES)}")
        if spec.tactic is not None and spec.tactic not in TACTICS:
            hint = suggest(spec.tactic, TACTICS, "tactics")
            raise ValueError(f"tactic {spec.tactic!r} is not an ATT&CK tactic ({hint})")
        if spec.technique is not None and not TECHNIQUE.match(spec.technique):
            raise ValueError(f"technique {spec.technique!r}: write an ATT&CK id such as T1059.004")
        if not spec.output:
            raise ValueError("a rule needs an `output` template, e.g. 'Shell %proc.name ran'")
        exceptions = self._exceptions(source, spec, line)
        condition = None
        if spec.condition is not None and spec.sequence is None:
            condition = self._condition(
                source, [(spec.condition, f"rule {spec.id}")], line, exceptions
            )
        sequence = None
        if spec.sequence is not None:
            sequence = self._sequence(source, spec, line, exceptions)
        tags = list(spec.tags)
        for extra in (spec.technique, spec.tactic):
            if extra and f"attack.{extra}" not in tags:
                tags.append(f"attack.{extra}")
        output_origin = source.origin(spec.output, line, f"rule {spec.id} output")
        return Rule(
            id=spec.id,
            description=spec.description,
            condition=condition,
            severity=spec.severity,
            output=parse_template(spec.output, Pos(1, 1, output_origin)),
            tactic=spec.tactic,
            technique=spec.technique,
            tags=tuple(tags),
            enabled=spec.enabled is not False,
            dedup_by=self._fields(spec.dedup_by, source, line)
            if spec.dedup_by is not None
            else None,
            dedup_window=parse_duration(spec.dedup_window)
            if spec.dedup_window is not None
            else None,
            threshold=self._threshold(spec, source, line),
            sequence=sequence,
            file=source.path,
            line=line or 0,
        )

    def _condition(
        self,
        source: RuleSource,
        texts: list[tuple[str, str]],
        line: int | None,
        exceptions: ast.Node | None,
    ) -> Checked:
        """`and` of the texts (a step and the rule's common condition), minus exceptions."""
        nodes = [
            ast.parse(text, source.origin(text, line, f"{what} condition")) for text, what in texts
        ]
        if exceptions is not None:
            nodes.append(ast.Not(exceptions, nodes[0].pos))
        node = nodes[0] if len(nodes) == 1 else ast.And(tuple(nodes), nodes[0].pos)
        return check(node, self.defs)

    def _exceptions(self, source: RuleSource, spec: RuleSpec, line: int | None) -> ast.Node | None:
        return exception_node(spec, source, line)

    def _fields(
        self, names: list[str], source: RuleSource, line: int | None
    ) -> tuple[FieldSpec, ...]:
        found = []
        for name in names:
            spec = FIELDS.get(name)
            if spec is None:
                raise ExprError(
                    f"unknown field `{name}`",
                    Pos(1, 1, source.origin(name, line, "")),
                    suggest(name, FIELDS, "fields"),
                )
            found.append(spec)
        return tuple(found)

    def _threshold(self, spec: RuleSpec, source: RuleSource, line: int | None) -> Threshold | None:
        raw = spec.threshold
        if raw is None:
            return None
        if raw.count < 2:
            raise ValueError("threshold.count must be 2 or more (1 is a plain rule)")
        distinct = self._fields([raw.distinct], source, line)[0] if raw.distinct else None
        return Threshold(
            raw.count, parse_duration(raw.window), self._fields(raw.by, source, line), distinct
        )

    def _sequence(
        self, source: RuleSource, spec: RuleSpec, line: int | None, exceptions: ast.Node | None
    ) -> Sequence:
        raw = spec.sequence
        assert raw is not None
        if len(raw.steps) < 2:
            raise ValueError("a sequence needs two or more steps")
        steps = []
        for number, step in enumerate(raw.steps, start=1):
            name = step.name or f"step {number}"
            texts = [(step.condition, f"rule {spec.id} {name}")]
            if spec.condition is not None:
                texts.append((spec.condition, f"rule {spec.id}"))
            condition = self._condition(source, texts, line, exceptions)
            key = self._fields([step.key], source, line)[0] if step.key else None
            steps.append(SequenceStep(name, condition, key))
        return Sequence(parse_duration(raw.window), tuple(steps), raw.ordered)

    def _override(self, source: RuleSource, spec: RuleSpec, line: int | None) -> None:
        given = {k for k in RuleSpec.__struct_fields__ if getattr(spec, k) not in (None, [], "")}
        extra = given - _OVERRIDABLE
        base = self.rules[spec.id]
        if extra:
            self._issue(
                source,
                f"overriding rule {spec.id} (defined at {base.where}): "
                f"cannot change {', '.join(sorted(extra))} without a condition",
                line,
                hint="override only enabled, severity, exceptions, dedup_window, dedup_by; "
                "or disable it and write a new rule",
                rule=spec.id,
            )
            return
        changes: dict[str, Any] = {}
        if spec.enabled is not None:
            changes["enabled"] = spec.enabled
        if spec.severity is not None:
            if spec.severity not in SEVERITIES:
                self._issue(
                    source,
                    f"severity {spec.severity!r}: use one of {', '.join(SEVERITIES)}",
                    line,
                    rule=spec.id,
                )
                return
            changes["severity"] = spec.severity
        try:
            if spec.dedup_window is not None:
                changes["dedup_window"] = parse_duration(spec.dedup_window)
            if spec.dedup_by is not None:
                changes["dedup_by"] = self._fields(spec.dedup_by, source, line)
            exceptions = self._exceptions(source, spec, line)
            if exceptions is not None:
                changes.update(self._with_exceptions(base, exceptions))
        except (ExprError, ValueError) as exc:
            if isinstance(exc, ExprError):
                self._expr_issue(exc, spec.id)
            else:
                self._issue(source, str(exc), line, rule=spec.id)
            return
        self.rules[spec.id] = replace(base, **changes)

    def _with_exceptions(self, base: Rule, exceptions: ast.Node) -> dict[str, Any]:
        extra = Negation(check(exceptions, self.defs))
        if base.sequence is not None:
            steps = tuple(
                replace(s, condition=Junction("and", (s.condition, extra)))
                for s in base.sequence.steps
            )
            return {"sequence": replace(base.sequence, steps=steps)}
        assert base.condition is not None
        return {"condition": Junction("and", (base.condition, extra))}
