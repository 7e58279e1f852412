"""Normalizing a value into views and matching every pattern rule on it in few passes.

Each rule runs on one view of a value (see ``fallback_rules``). Most values look the same
through several views (no ``&`` to unescape, no quotes to strip), so views with identical text
are matched together: the index keeps one ``re2.Set`` per (value kind, set of views) and
compiles it the first time that combination occurs. A typical value then costs one RE2 pass.

Everything here is linear in the value: ``str`` methods, ``html.unescape`` and RE2 (whose
automata never backtrack). The only regex substitution, for SQL comments, also runs on RE2.
"""

from __future__ import annotations

import html
from urllib.parse import unquote

import re2

from sentinel_agents.waf.fallback_rules import PatternRule, View
from sentinel_agents.waf.request_parts import Kind

# The only patterns that can match a purely alphanumeric value start with these.
_ALNUM_PREFIXES = ("0x", "0X", "rO0AB", "aced0005")
_COMMENT_VERSIONED = re2.compile(r"/\*!\d*")
_COMMENT = re2.compile(r"/\*.*?\*/")
# Shell quoting tricks vanish (c''at, c\at, ^); a newline separates commands like ';' does.
_CMD_TABLE = str.maketrans({"\\": None, '"': None, "'": None, "^": None, "\n": ";"})
_HTML_DROP = str.maketrans({"\t": None, "\n": None, "\r": None})
_CMD_CHARS = frozenset("\\\"'^$")


class _Entry:
    """One compiled set: its rules in Set order, and each rule alone for extracting the match."""

    __slots__ = ("rules", "set", "single")

    def __init__(self, rules: list[PatternRule]) -> None:
        self.rules = rules
        self.single = [re2.compile(rule.pattern) for rule in rules]
        self.set = re2.Set.SearchSet()
        for rule in rules:
            self.set.Add(rule.pattern)
        self.set.Compile()


class Hit:
    """A rule that matched, and the text it matched."""

    __slots__ = ("matched", "rule")

    def __init__(self, rule: PatternRule, matched: str) -> None:
        self.rule = rule
        self.matched = matched


# View sets as bit masks: "lower" and "path" always see the same text.
_LOWER, _HTML, _CMD, _RAW = 1, 2, 4, 8
_BIT_VIEWS: tuple[tuple[int, tuple[View, ...]], ...] = (
    (_LOWER, ("lower", "path")),
    (_HTML, ("html",)),
    (_CMD, ("cmd",)),
    (_RAW, ("raw",)),
)
_MASK_VIEWS: dict[int, frozenset[View]] = {
    mask: frozenset(v for bit, names in _BIT_VIEWS if mask & bit for v in names)
    for mask in range(1, 16)
}


class RuleIndex:
    """Pattern rules grouped for single-pass matching; safe to share between threads.

    Every (kind, view set) combination is compiled up front, so no request pays for a
    compilation and no lazily filled cache is shared between threads.
    """

    def __init__(self, rules: list[PatternRule]) -> None:
        self.rules = rules
        self._entries: dict[tuple[Kind, int], _Entry | None] = {}
        compiled: dict[tuple[int, ...], _Entry] = {}  # many combinations share a rule list
        for kind in Kind:
            for mask, views in _MASK_VIEWS.items():
                members = [r for r in rules if kind in r.kinds and r.view in views]
                key = tuple(id(r) for r in members)
                if members and key not in compiled:
                    compiled[key] = _Entry(members)
                self._entries[(kind, mask)] = compiled[key] if members else None

    def match(self, kind: Kind, value: str, decoded: str) -> list[Hit]:
        """Every rule for ``kind`` whose view of the value matches."""
        hits: list[Hit] = []
        for text, mask in _views(value, decoded):
            entry = self._entries[(kind, mask)]
            if entry is None:
                continue
            found = entry.set.Match(text.encode())
            if not found:
                continue
            for index in sorted(found):
                match = entry.single[index].search(text)
                hits.append(Hit(entry.rules[index], match.group(0) if match else ""))
        return hits


def cannot_match(value: str) -> bool:
    """True for values no rule can match: empty, or letters and digits only (most values)."""
    return not value or (value.isalnum() and not value.startswith(_ALNUM_PREFIXES))


def decode(value: str) -> str:
    """One more round of URL decoding (the framework decoded once), %u escapes, no NULs."""
    if "%" in value:
        value = unquote(_percent_u(value), errors="replace")
    return value.replace("\x00", "")


def _views(raw: str, decoded: str) -> list[tuple[str, int]]:
    """The distinct texts of a value, each with the mask of views that see exactly it."""
    lower = decoded.lower()
    if "\\" in lower:
        lower = lower.replace("\\", "/")
    if "/*" in lower:
        lower = str(_COMMENT.sub(" ", _COMMENT_VERSIONED.sub(" ", lower))).replace("*/", " ")
    spaced = "  " in lower or "\t" in lower or "\r" in lower or "\n" in lower
    if spaced:
        lower = " ".join(lower.split())
    if spaced or not _CMD_CHARS.isdisjoint(decoded):
        cmd = " ".join(decoded.lower().translate(_CMD_TABLE).replace("$@", "").split())
    else:
        cmd = lower
    html_text = html.unescape(lower).translate(_HTML_DROP) if "&" in lower else lower
    groups: list[tuple[str, int]] = [(lower, _LOWER)]
    for text, bit in ((html_text, _HTML), (cmd, _CMD), (raw, _RAW)):
        for position, (seen, mask) in enumerate(groups):
            if seen == text:
                groups[position] = (seen, mask | bit)
                break
        else:
            groups.append((text, bit))
    return groups


def _percent_u(value: str) -> str:
    if "%u" not in value and "%U" not in value:
        return value
    parts = value.replace("%U", "%u").split("%u")
    out = [parts[0]]
    for part in parts[1:]:
        code = part[:4]
        if len(code) == 4 and all(c in "0123456789abcdefABCDEF" for c in code):
            out.append(chr(int(code, 16)) + part[4:])
        else:
            out.append("%u" + part)
    return "".join(out)
