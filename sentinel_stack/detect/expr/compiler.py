"""From a parsed condition to a Python closure per event kind: checked once, never eval'd.

Two steps. `check` resolves macros and lists and type-checks every test against the field
registry, kind-independently: unknown names and type mismatches fail here, with the
position and a hint. `compile_for` then builds the predicate for one event kind: each
field becomes that kind's getter (or a constant: `evt.kind` is a constant per kind, a field
the kind lacks is null), constants fold, and a condition that folds to False for a kind
tells the engine not to index the rule under it. Closures are specialised per operator
(``lambda e: get(e) in values``) so a test costs one or two C-level calls.

Null semantics: any test of a null field is false (including ``!=``); `not` inverts that.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.expr.errors import ExprError, Pos, suggest
from sentinel_stack.detect.expr.fields import FIELDS, KINDS, Const, FieldSpec, Getter
from sentinel_stack.detect.expr.syntax import (
    And,
    Compare,
    Exists,
    FieldRef,
    ListLiteral,
    ListRef,
    Literal,
    MacroRef,
    Node,
    Not,
    Or,
    Scalar,
    Truthy,
    Value,
)

__all__ = ["Checked", "Definitions", "Predicate", "Test", "check", "compile_for", "fields_of"]

Predicate = Callable[[Any], bool]
_LISTS = {"strs": "str", "ints": "int"}
_NUMERIC = ("int", "float")
_KNOWN_KINDS = frozenset(KINDS)


@dataclass(frozen=True, slots=True)
class Test:
    """One checked leaf: `field op value`; `value` is a scalar, a tuple (any of) or a field."""

    op: str  # a comparison operator, "exists" or "truthy"
    field: FieldSpec
    value: Any
    pos: Pos


@dataclass(frozen=True, slots=True)
class Junction:
    op: str  # "and" | "or"
    items: tuple[Checked, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    item: Checked


Checked = Test | Junction | Negation


@dataclass
class Definitions:
    """Named lists and macros (parsed) visible to conditions."""

    lists: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)
    macros: Mapping[str, Node] = field(default_factory=dict)
    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: FIELDS)


def check(node: Node, defs: Definitions, _stack: tuple[str, ...] = ()) -> Checked:
    """Resolve names and check types; ExprError at the first problem."""
    if isinstance(node, And | Or):
        op = "and" if isinstance(node, And) else "or"
        return Junction(op, tuple(check(item, defs, _stack) for item in node.items))
    if isinstance(node, Not):
        return Negation(check(node.item, defs, _stack))
    if isinstance(node, MacroRef):
        return _macro(node, defs, _stack)
    if isinstance(node, Exists):
        return Test("exists", _field(node.field, defs), None, node.pos)
    if isinstance(node, Truthy):
        spec = _field(node.field, defs)
        if spec.type != "bool":
            raise ExprError(
                f"`{spec.name}` is a {_type_name(spec.type)}, not a condition by itself",
                node.pos,
                f"compare it: {spec.name} = …, {spec.name} in (…), or {spec.name} exists",
            )
        return Test("truthy", spec, None, node.pos)
    return _compare(node, defs)


def _macro(node: MacroRef, defs: Definitions, stack: tuple[str, ...]) -> Checked:
    body = defs.macros.get(node.name)
    if body is None:
        if node.name in defs.lists:
            raise ExprError(
                f"`{node.name}` is a list, not a condition",
                node.pos,
                f"use it after `in`: proc.name in {node.name}",
            )
        hint = suggest(node.name, [*defs.macros, *defs.fields], "macros")
        raise ExprError(f"unknown macro `{node.name}`", node.pos, hint)
    if node.name in stack:
        cycle = " -> ".join((*stack[stack.index(node.name) :], node.name))
        raise ExprError(f"macro cycle: {cycle}", node.pos, "a macro may not use itself")
    return check(body, defs, (*stack, node.name))


def _field(ref: FieldRef, defs: Definitions) -> FieldSpec:
    spec = defs.fields.get(ref.name)
    if spec is None:
        raise ExprError(
            f"unknown field `{ref.name}`", ref.pos, suggest(ref.name, defs.fields, "fields")
        )
    return spec


def _type_name(type_: str) -> str:
    return {
        "str": "string",
        "int": "number",
        "float": "number",
        "bool": "boolean",
        "strs": "list of strings",
        "ints": "list of numbers",
    }[type_]


def _values(value: Value, defs: Definitions) -> tuple[Scalar, ...] | None:
    """The items of a list value (literal, named, or a bare word naming a list), or None."""
    if isinstance(value, ListRef) or (isinstance(value, Literal) and value.bare):
        name = value.name if isinstance(value, ListRef) else str(value.value)
        if name in defs.lists:
            return defs.lists[name]
        if isinstance(value, ListRef):
            raise ExprError(
                f"unknown list `{name}`",
                value.pos,
                suggest(name, defs.lists, "lists") + " (or write the values: (a, b))",
            )
        return None
    if isinstance(value, ListLiteral):
        items: list[Scalar] = []
        for item in value.items:
            spliced = _values(item, defs) if isinstance(item, Literal) and item.bare else None
            if spliced is not None:
                items.extend(spliced)
            elif isinstance(item, Literal):
                items.append(item.value)
        return tuple(items)
    return None


def _coerce(value: Scalar, type_: str, pos: Pos, spec: FieldSpec) -> Scalar:
    base = _LISTS.get(type_, type_)
    if base in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ExprError(f"`{spec.name}` is a number; {value!r} is not", pos)
        if isinstance(value, str):
            try:
                return int(value, 0)
            except ValueError:
                raise ExprError(
                    f"`{spec.name}` is a number; {value!r} is not", pos, "write e.g. 4444"
                ) from None
        return value
    if base == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ExprError(f"`{spec.name}` is a boolean: compare it with true or false", pos)
    return value if isinstance(value, str) else str(value)


def _compare(node: Compare, defs: Definitions) -> Test:
    spec = _field(node.field, defs)
    op, ftype, value = node.op, spec.type, node.value
    is_list = ftype in _LISTS
    if isinstance(value, FieldRef):
        other = _field(value, defs)
        return _compare_fields(node, spec, other)
    items = _values(value, defs)
    pos = value.pos
    if op in ("=", "!=", "<", "<=", ">", ">="):
        if is_list:
            raise ExprError(
                f"`{spec.name}` is a {_type_name(ftype)}; `{op}` compares single values",
                node.pos,
                f"use `{spec.name} contains X` or `{spec.name} intersects (a, b)`",
            )
        if items is not None:
            raise ExprError(f"`{op}` needs one value, not a list", pos, f"use `{spec.name} in (…)`")
        if op not in ("=", "!=") and ftype not in _NUMERIC:
            raise ExprError(
                f"`{op}` orders numbers; `{spec.name}` is a {_type_name(ftype)}", node.pos
            )
        assert isinstance(value, Literal)
        return Test(op, spec, _coerce(value.value, ftype, pos, spec), node.pos)
    if op in ("in", "intersects"):
        if items is None:
            raise ExprError(
                f"`{op}` needs a list: (a, b, c) or the name of a list",
                pos,
                "a single value is compared with `=`",
            )
        if op == "in" and is_list:
            raise ExprError(
                f"`{spec.name}` is a {_type_name(ftype)}; `in` tests one value",
                node.pos,
                f"use `{spec.name} intersects …` (any element in the list)",
            )
        if op == "intersects" and not is_list:
            raise ExprError(
                f"`intersects` compares two lists; `{spec.name}` is a {_type_name(ftype)}",
                node.pos,
                f"use `{spec.name} in …`",
            )
        return Test(op, spec, frozenset(_coerce(v, ftype, pos, spec) for v in items), node.pos)
    # contains, icontains, startswith, endswith, glob: strings (or lists of them)
    if ftype not in ("str", "strs") and not (op == "contains" and ftype == "ints"):
        raise ExprError(
            f"`{op}` works on strings; `{spec.name}` is a {_type_name(ftype)}",
            node.pos,
            "compare numbers with = < > or in (…)",
        )
    if items is None:
        assert isinstance(value, Literal)
        items = (value.value,)
    coerced = tuple(_coerce(v, ftype, pos, spec) for v in items)
    if op == "glob":
        for pattern in coerced:
            if not isinstance(pattern, str) or not pattern:
                raise ExprError("a glob pattern must be a non-empty string", pos)
    return Test(op, spec, coerced, node.pos)


def _compare_fields(node: Compare, spec: FieldSpec, other: FieldSpec) -> Test:
    op = node.op
    if op == "in" and other.type in _LISTS and spec.type == _LISTS[other.type]:
        return Test("in_field", spec, other, node.pos)
    scalar_types = {spec.type, other.type}
    if (
        op in ("=", "!=")
        and (len(scalar_types) == 1 or scalar_types <= set(_NUMERIC))
        and spec.type not in _LISTS
    ):
        return Test(op + "_field", spec, other, node.pos)
    if op in ("<", "<=", ">", ">=") and scalar_types <= set(_NUMERIC):
        return Test(op + "_field", spec, other, node.pos)
    raise ExprError(
        f"cannot compare `{spec.name}` ({_type_name(spec.type)}) {op} "
        f"`{other.name}` ({_type_name(other.type)})",
        node.pos,
    )


def fields_of(node: Checked) -> set[str]:
    if isinstance(node, Test):
        found = {node.field.name}
        if isinstance(node.value, FieldSpec):
            found.add(node.value.name)
        return found
    if isinstance(node, Negation):
        return fields_of(node.item)
    return set().union(*(fields_of(item) for item in node.items))


# --- compilation -------------------------------------------------------------------------


def compile_for(node: Checked, kind: str | None, view: StackView) -> Predicate | bool:
    """The predicate for events of `kind`, or a constant when it does not depend on them."""
    if isinstance(node, Negation):
        inner = compile_for(node.item, kind, view)
        if isinstance(inner, bool):
            return not inner
        return lambda e: not inner(e)
    if isinstance(node, Junction):
        return _junction(node, kind, view)
    return _test(node, kind, view)


def _junction(node: Junction, kind: str | None, view: StackView) -> Predicate | bool:
    is_and = node.op == "and"
    parts: list[Predicate] = []
    for item in node.items:
        compiled = compile_for(item, kind, view)
        if isinstance(compiled, bool):
            if compiled is not is_and:  # False in an `and`, True in an `or`: decided
                return compiled
            continue
        parts.append(compiled)
    if not parts:
        return is_and
    result = parts[-1]
    for part in reversed(parts[:-1]):  # right-nested pairs: no generator per call
        result = _pair(part, result, is_and)
    return result


def _pair(a: Predicate, b: Predicate, is_and: bool) -> Predicate:
    if is_and:
        return lambda e: a(e) and b(e)
    return lambda e: a(e) or b(e)


def _test(test: Test, kind: str | None, view: StackView) -> Predicate | bool:
    if kind is None and test.field.name == "evt.kind" and test.op in ("=", "in"):
        # An event without a schema never has a kind that has one.
        wanted = test.value if test.op == "in" else {test.value}
        if wanted <= _KNOWN_KINDS:
            return False
    access = test.field.access(kind, view)
    other: Getter | Const | None = None
    if isinstance(test.value, FieldSpec):
        other = test.value.access(kind, view)
        if isinstance(other, Const) and other.value is None:
            return False
    if isinstance(access, Const):
        if access.value is None:
            return False
        constant = access.value
        if other is None or isinstance(other, Const):
            # Both sides known now: evaluate once, with the same code the events would run.
            return bool(_build(test, lambda _e: constant, _constant_getter(other))(None))
        return _build(test, lambda _e: constant, other)
    return _build(test, access, _constant_getter(other) if isinstance(other, Const) else other)


def _constant_getter(other: Getter | Const | None) -> Getter | None:
    if isinstance(other, Const):
        value = other.value
        return lambda _e: value
    return other


def _build(test: Test, get: Getter, other: Getter | None) -> Predicate:
    op, v = test.op, test.value
    is_list = test.field.type in _LISTS
    if other is not None:
        return _build_fields(op, get, other)
    match op:
        case "=":
            return lambda e: get(e) == v
        case "!=":
            return lambda e: (x := get(e)) is not None and x != v
        case "<":
            return lambda e: (x := get(e)) is not None and x < v
        case "<=":
            return lambda e: (x := get(e)) is not None and x <= v
        case ">":
            return lambda e: (x := get(e)) is not None and x > v
        case ">=":
            return lambda e: (x := get(e)) is not None and x >= v
        case "in":
            return lambda e: get(e) in v
        case "intersects":
            return lambda e: (x := get(e)) is not None and not v.isdisjoint(x)
        case "exists":
            return lambda e: (x := get(e)) is not None and x != "" and x != []
        case "truthy":
            return lambda e: bool(get(e))
        case "contains" if is_list:
            wanted = frozenset(v)
            return lambda e: (x := get(e)) is not None and not wanted.isdisjoint(x)
        case "contains":
            if len(v) == 1:
                one = v[0]
                return lambda e: (x := get(e)) is not None and one in x
            return lambda e: (x := get(e)) is not None and any(s in x for s in v)
        case "icontains":
            lowered = tuple(s.lower() for s in v)
            if is_list:
                wanted = frozenset(lowered)
                return lambda e: (x := get(e)) is not None and any(i.lower() in wanted for i in x)
            return lambda e: (x := get(e)) is not None and any(s in x.lower() for s in lowered)
        case "startswith" | "endswith":
            method = str.startswith if op == "startswith" else str.endswith
            if is_list:
                return lambda e: (x := get(e)) is not None and any(method(i, v) for i in x)
            return lambda e: (x := get(e)) is not None and method(x, v)
        case "glob":
            matcher = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in v)).match
            if is_list:
                return lambda e: (x := get(e)) is not None and any(matcher(i) for i in x)
            return lambda e: (x := get(e)) is not None and matcher(x) is not None
    raise AssertionError(f"operator {op} has no compiler")


def _build_fields(op: str, get: Getter, other: Getter) -> Predicate:
    if op == "in_field":
        return lambda e: (x := get(e)) is not None and x in (other(e) or ())
    compare: Callable[[Any, Any], bool] = {
        "=_field": lambda a, b: a == b,
        "!=_field": lambda a, b: a != b,
        "<_field": lambda a, b: a < b,
        "<=_field": lambda a, b: a <= b,
        ">_field": lambda a, b: a > b,
        ">=_field": lambda a, b: a >= b,
    }[op]
    return lambda e: (a := get(e)) is not None and (b := other(e)) is not None and compare(a, b)
