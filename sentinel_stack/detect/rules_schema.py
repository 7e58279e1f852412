"""The shape of a rule file (msgspec structs), its positions, and the errors it can raise.

Split from `rules_loader` so the loader reads as the algorithm: these are the data it
checks against and the way a problem is told (file:line:col, a hint, the rule id).
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sentinel_stack.config.locate import index_lines
from sentinel_stack.detect.expr import ExprError, Origin, Pos
from sentinel_stack.detect.expr import syntax as ast

__all__ = [
    "RuleFile",
    "RuleIssue",
    "RuleSource",
    "RuleSpec",
    "RulesError",
    "exception_node",
    "read_rule_file",
    "schema_issue",
]


@dataclass(frozen=True)
class RuleIssue:
    message: str
    file: str
    line: int | None = None
    col: int | None = None
    hint: str = ""
    rule: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        rule = f" rule {self.rule}:" if self.rule else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}:{rule} {self.message}{hint}"


@dataclass
class RulesError(Exception):
    issues: list[RuleIssue] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the rules:"
        return "\n".join([head, *(str(issue) for issue in self.issues)])


class ExceptionSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    fields: list[str]
    values: list[Any]
    comps: list[str] = []


class ThresholdSpec(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    window: float | str
    by: list[str] = []
    distinct: str | None = None


class StepSpec(msgspec.Struct, forbid_unknown_fields=True):
    condition: str
    name: str = ""
    key: str | None = None


class SequenceSpec(msgspec.Struct, forbid_unknown_fields=True):
    window: float | str
    steps: list[StepSpec]
    ordered: bool = True


class RuleSpec(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    description: str = ""
    condition: str | None = None
    severity: str | None = None
    output: str | None = None
    tactic: str | None = None
    technique: str | None = None
    tags: list[str] = []
    enabled: bool | None = None
    exceptions: list[ExceptionSpec] = []
    dedup_by: list[str] | None = None
    dedup_window: float | str | None = None
    threshold: ThresholdSpec | None = None
    sequence: SequenceSpec | None = None


class RuleFile(msgspec.Struct, forbid_unknown_fields=True):
    lists: dict[str, list[str | int]] = {}
    append_lists: dict[str, list[str | int]] = {}
    macros: dict[str, str] = {}
    rules: list[dict[str, Any]] = []


@dataclass
class RuleSource:
    """One file's text, and how to turn offsets and key paths into lines and columns."""

    path: str
    text: str
    data: RuleFile
    index: dict[tuple[str | int, ...], int]
    starts: list[int]

    @classmethod
    def read(cls, path: str, text: str, data: RuleFile) -> RuleSource:
        starts = [0]
        starts.extend(i + 1 for i, c in enumerate(text) if c == "\n")
        return cls(path, text, data, index_lines(text), starts)

    def line_of(self, *key: str | int) -> int | None:
        return self.index.get(tuple(key))

    def origin(self, needle: str, after_line: int | None, what: str) -> Origin:
        """Where `needle` (an expression's text) sits, searching from `after_line`."""
        start = self.starts[(after_line or 1) - 1]
        found = self.text.find(needle, start) if needle else -1
        if found < 0:
            return Origin(self.path, after_line or 1, 1, what)
        line = bisect.bisect_right(self.starts, found)
        return Origin(self.path, line, found - self.starts[line - 1] + 1, what)


def schema_issue(
    exc: msgspec.ValidationError,
    path: str,
    text: str,
    base: tuple[str | int, ...],
    allowed: str,
    rule: str | None = None,
    line: int | None = None,
) -> RuleIssue:
    message = str(exc)
    hint = ""
    if "Object contains unknown field" in message:
        hint = f"allowed keys: {allowed}"
    detail, _, at = message.partition(" - at `$")
    key = at.rstrip("`").lstrip(".") if at else ""
    parts: list[str | int] = [
        int(p) if p.isdigit() else p for p in key.replace("[", ".").replace("]", "").split(".") if p
    ]
    if "unknown field `" in detail:
        parts.append(detail.split("unknown field `", 1)[1].split("`", 1)[0])
    if parts:
        line = index_lines(text).get((*base, *parts), line)
    return RuleIssue(f"{detail}" + (f" (at {key})" if key else ""), path, line, None, hint, rule)


def read_rule_file(path: str, text: str) -> RuleSource | RuleIssue:
    """Parse and shape-check one file; the first problem as an issue."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, _, where = str(exc).partition(" (at line ")
        line, _, col = where.rstrip(")").partition(", column ")
        return RuleIssue(
            f"TOML syntax error: {message}",
            path,
            int(line) if line.isdigit() else None,
            int(col) if col.isdigit() else None,
            "see https://toml.io; strings with quotes inside fit in '''…'''",
        )
    try:
        data = msgspec.convert(raw, RuleFile)
    except msgspec.ValidationError as exc:
        return schema_issue(exc, path, text, (), "lists, append_lists, macros, rules")
    return RuleSource.read(path, text, data)


def exception_node(spec: RuleSpec, source: RuleSource, line: int | None) -> ast.Node | None:
    """Each exception is an `or` of value tuples, each tuple an `and` of field tests."""
    alternatives: list[ast.Node] = []
    for exc in spec.exceptions:
        origin = source.origin(f'"{exc.name}"', line, f"rule {spec.id} exception {exc.name}")
        pos = Pos(1, 1, origin)
        comps = exc.comps or ["="] * len(exc.fields)
        if len(comps) != len(exc.fields) or not exc.fields:
            raise ExprError("exception `comps` must match `fields` one to one", pos)
        for value in exc.values:
            row = value if isinstance(value, list) and len(exc.fields) > 1 else [value]
            if len(row) != len(exc.fields):
                raise ExprError(
                    f"exception value {value!r} has {len(row)} items for {len(exc.fields)} fields",
                    pos,
                    "give one value per field, in order",
                )
            tests: list[ast.Node] = []
            for name, comp, item in zip(exc.fields, comps, row, strict=True):
                if comp not in ast.COMPARE_OPS:
                    raise ExprError(f"unknown comparison {comp!r} in exception", pos)
                rhs: ast.Value
                if isinstance(item, list):
                    rhs = ast.ListLiteral(tuple(ast.Literal(v, pos) for v in item), pos)
                elif comp in ("in", "intersects"):
                    rhs = ast.ListRef(str(item), pos)
                else:
                    rhs = ast.Literal(item, pos)
                tests.append(ast.Compare(ast.FieldRef(name, pos), comp, rhs, pos))
            alternatives.append(tests[0] if len(tests) == 1 else ast.And(tuple(tests), pos))
    if not alternatives:
        return None
    return (
        alternatives[0]
        if len(alternatives) == 1
        else ast.Or(tuple(alternatives), alternatives[0].pos)
    )
