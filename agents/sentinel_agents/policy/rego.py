"""The one place that talks to regopy (rego-cpp): compile once, evaluate many times.

Compiling (parse, check, plan) costs milliseconds; evaluating a built bundle with a new
input costs a fraction of one. So a policy is compiled when loaded and each request only
sets the input and runs the bundle's query.

Evaluation reads the output through `regopy.rego_shared` rather than `regopy.Output`:
`Output` JSON-decodes the output text eagerly and raises a bare JSONDecodeError when the
engine reports an evaluation error as text (e.g. an unknown function), losing the message.

Known rego-cpp limitation (regopy 1.3-1.5): compiling a module that uses
``with input as <object>`` on a rule whose body calls a built-in aborts the whole process
(C++ ``std::terminate``, not a Python exception). ``with input.<field> as ...`` works.
Callers that compile untrusted or test modules do it in a child process (see `isolated`).

A `RegoProgram` is not thread-safe: the agent evaluates from one Trio thread.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import regopy  # the package __init__ has loaded libstdc++ first: see _preload
from regopy import rego_shared

_ERROR_ITEM = re.compile(r"\(error (\d+):")


@dataclass(frozen=True, slots=True)
class RegoDiagnostic:
    """One compiler message with its place: ``file:line:col: message``."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RegoCompileError(Exception):
    """Modules or data the engine refused; ``diagnostics`` place each problem."""

    def __init__(self, message: str, diagnostics: tuple[RegoDiagnostic, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class RegoEvalError(Exception):
    """The engine failed while evaluating (conflicting rule values, unknown function, ...)."""


class Undefined(enum.Enum):
    """The type of `UNDEFINED`: Rego's "no value", distinct from ``null`` and ``false``."""

    UNDEFINED = "undefined"


UNDEFINED = Undefined.UNDEFINED


class RegoProgram:
    """Modules and data compiled into a bundle with one query: ``result = <query ref>``."""

    def __init__(self, modules: Mapping[str, str], data: Mapping[str, Any], query_ref: str) -> None:
        """Compile; raises `RegoCompileError` naming file, line and column where it can."""
        self._interpreter = regopy.Interpreter()
        self._interpreter.log_level = regopy.LogLevel.NONE
        try:
            if data:
                self._interpreter.add_data_json(json.dumps(data))
            for name, source in modules.items():
                self._interpreter.add_module(name, source)
            self._bundle = self._interpreter.build(f"result = {query_ref}")
        except regopy.RegoError as exc:
            diagnostics = parse_rego_errors(str(exc), modules)
            summary = "; ".join(str(d) for d in diagnostics) or str(exc).strip()
            raise RegoCompileError(summary, diagnostics) from None
        if not self._bundle.ok():
            raise RegoCompileError(f"rego-cpp could not build {query_ref}")
        self.query_ref = query_ref

    def evaluate(self, input_document: Mapping[str, Any]) -> Any:
        """The query's value for ``input_document``, or `UNDEFINED`; raises `RegoEvalError`."""
        interpreter = self._interpreter
        try:
            interpreter.set_input(dict(input_document))
        except regopy.RegoError as exc:
            raise RegoEvalError(f"input rejected by the engine: {exc}") from None
        output = rego_shared.rego_bundle_query(interpreter._impl, self._bundle._impl)
        try:
            ok = rego_shared.rego_output_ok(output)
            text = rego_shared.rego_output_string(output)
        finally:
            rego_shared.rego_free_output(output)
        if not ok:
            raise RegoEvalError(f"evaluation failed: {text.strip()}")
        if text == "undefined":
            return UNDEFINED
        if text.startswith("(error"):
            message = re.search(r"\(errormsg \d+:([^\n)]*)", text)
            raise RegoEvalError(message.group(1) if message else text.strip())
        decoded = msgspec.json.decode(text)
        bindings = decoded.get("bindings") if isinstance(decoded, dict) else None
        if not isinstance(bindings, dict) or "result" not in bindings:
            return UNDEFINED
        return bindings["result"]


def rego_queries(
    modules: Mapping[str, str], data: Mapping[str, Any], refs: Sequence[str]
) -> dict[str, object]:
    """Evaluate several references against one interpreter, without building a bundle.

    For tooling such as the test runner: each value is the reference's value, `UNDEFINED`,
    or the `RegoEvalError` it raised. Raises `RegoCompileError` when the modules do not load.
    """
    interpreter = regopy.Interpreter()
    interpreter.log_level = regopy.LogLevel.NONE
    try:
        if data:
            interpreter.add_data_json(json.dumps(data))
        for name, source in modules.items():
            interpreter.add_module(name, source)
    except regopy.RegoError as exc:
        diagnostics = parse_rego_errors(str(exc), modules)
        raise RegoCompileError(
            "; ".join(str(d) for d in diagnostics) or str(exc).strip(), diagnostics
        ) from None
    values: dict[str, object] = {}
    for ref in refs:
        try:
            output = interpreter.query(f"result = {ref}")
        except regopy.RegoError as exc:
            values[ref] = RegoEvalError(str(exc).strip())
            continue
        except ValueError as exc:  # regopy's Output could not decode an error text
            values[ref] = RegoEvalError(f"evaluation failed: {exc}")
            continue
        if not output.ok():
            values[ref] = RegoEvalError(f"evaluation failed: {output}")
            continue
        values[ref] = next(
            (r.bindings["result"] for r in output.results if "result" in r.bindings), UNDEFINED
        )
    return values


def parse_rego_errors(text: str, modules: Mapping[str, str]) -> tuple[RegoDiagnostic, ...]:
    """Diagnostics from rego-cpp's error tree ``(error N:file|offset|len (errormsg N:msg))``.

    Strings in that tree are length-prefixed, so they are read by length rather than by a
    pattern that a file name or message could break. Offsets become line and column using
    the module text.
    """
    found: list[RegoDiagnostic] = []
    seen: set[tuple[str, int, str]] = set()
    for start in _ERROR_ITEM.finditer(text):
        file, pos = _read_counted(text, start.start(1))
        offset_match = re.match(r"\|(\d+)\|\d+", text[pos:])
        offset = int(offset_match.group(1)) if offset_match else 0
        msg_at = text.find("(errormsg ", pos)
        message = ""
        if msg_at != -1:
            message, _ = _read_counted(text, msg_at + len("(errormsg "))
        line, column = _line_col(modules.get(file, ""), offset)
        key = (file, offset, message)
        if key not in seen:
            seen.add(key)
            found.append(RegoDiagnostic(file, line, column, message))
    return tuple(found)


def _read_counted(text: str, at: int) -> tuple[str, int]:
    """Read ``N:<N chars>`` at ``at``; returns the string and the position after it."""
    colon = text.index(":", at)
    length = int(text[at:colon])
    return text[colon + 1 : colon + 1 + length], colon + 1 + length


def _line_col(source: str, offset: int) -> tuple[int, int]:
    before = source[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1
