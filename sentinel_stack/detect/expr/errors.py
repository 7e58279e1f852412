"""Where an expression came from, and the error that points back into it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NOWHERE", "ExprError", "Origin", "Pos", "suggest"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an expression's text sits: a rule file, at the line and column of its first
    character (a TOML string's content), and what it is ("rule web_shell condition")."""

    file: str = "<expr>"
    line: int = 1
    col: int = 1
    what: str = ""

    def locate(self, line: int, col: int) -> tuple[int, int]:
        """A (line, column) inside the expression, as a (line, column) in the file."""
        if line == 1:
            return self.line, self.col + col - 1
        return self.line + line - 1, col


NOWHERE = Origin()


@dataclass(frozen=True, slots=True)
class Pos:
    """A position inside one expression's text, 1-based."""

    line: int
    col: int
    origin: Origin = NOWHERE

    def __str__(self) -> str:
        line, col = self.origin.locate(self.line, self.col)
        return f"{self.origin.file}:{line}:{col}"


class ExprError(Exception):
    """A condition that cannot be parsed or compiled: what, where, and what to do."""

    def __init__(self, message: str, pos: Pos, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint

    @property
    def file(self) -> str:
        return self.pos.origin.file

    @property
    def line(self) -> int:
        return self.pos.origin.locate(self.pos.line, self.pos.col)[0]

    @property
    def col(self) -> int:
        return self.pos.origin.locate(self.pos.line, self.pos.col)[1]

    def __str__(self) -> str:
        what = f" ({self.pos.origin.what})" if self.pos.origin.what else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{self.pos}:{what} {self.message}{hint}"


def suggest(name: str, known: Iterable[str], what: str) -> str:
    """A "did you mean" hint, or the list of what exists when nothing is close."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if not names:
        return f"no {what} is defined"
    if len(names) > 12:
        return f"see docs/detection.md for the {what} available"
    return f"known {what}: " + ", ".join(names)
