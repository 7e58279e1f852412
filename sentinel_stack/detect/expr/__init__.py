"""The detection condition language: parse once, check names and types, compile to closures.

See docs/detection.md for the reference. Entry points: `parse` (text -> tree), `check`
(tree + lists/macros -> checked tree), `compile_for` (checked tree + event kind -> predicate).
"""

from sentinel_stack.detect.expr.compiler import (
    Checked,
    Definitions,
    Predicate,
    check,
    compile_for,
    fields_of,
)
from sentinel_stack.detect.expr.errors import ExprError, Origin, Pos, suggest
from sentinel_stack.detect.expr.fields import FIELDS, KIND_CLASSES, KINDS, FieldSpec
from sentinel_stack.detect.expr.syntax import Node, parse

__all__ = [
    "FIELDS",
    "KINDS",
    "KIND_CLASSES",
    "Checked",
    "Definitions",
    "ExprError",
    "FieldSpec",
    "Node",
    "Origin",
    "Pos",
    "Predicate",
    "check",
    "compile_for",
    "fields_of",
    "parse",
    "suggest",
]
