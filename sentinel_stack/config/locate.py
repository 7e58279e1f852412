"""Find the line of a key path in TOML text, so errors can say where to look.

tomllib keeps no positions, so this scans the text for table headers and key
assignments. It is deliberately forgiving: when it cannot place the exact key it
returns the line of the nearest enclosing table it found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")
_DOTTED_PART = re.compile(r"[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _DOTTED_PART.findall(text))


def index_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path we can recognise to its 1-based line number."""
    lines: dict[KeyPath, int] = {}
    prefix: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            path: KeyPath = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(path, -1) + 1
                array_counts[path] = index
                path = (*path, index)
            prefix = path
            lines.setdefault(prefix, number)
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        key = (*prefix, *_split_key(assign.group(1)))
        lines.setdefault(key, number)
        rest = line[assign.end() :]
        for inner in _INLINE_KEY.findall(rest):
            lines.setdefault((*key, inner.strip("\"'")), number)
        for quote in ('"""', "'''"):
            if rest.count(quote) == 1:
                in_multiline = quote
    return lines


def line_of(index: dict[KeyPath, int], path: Sequence[str | int]) -> int | None:
    """The line of ``path``, or of its longest prefix that has one."""
    for end in range(len(path), 0, -1):
        found = index.get(tuple(path[:end]))
        if found is not None:
            return found
    return None
