"""Time-to-live spellings for denylist entries: ``"30s"``, ``"10m"``, ``"1h"``, ``"2d"``,
compounds such as ``"1h30m"``, or plain seconds.

Operators type these at a prompt while an attack is under way, so the parser is lenient
about spaces and case but strict about meaning: zero, negative and unknown units are errors.
"""

from __future__ import annotations

import re

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[smhdw])+\s*$")


def parse_ttl(value: str | float) -> float:
    """Seconds from ``"10m"``-style text or a number; raises ValueError saying what is accepted."""
    if isinstance(value, bool):
        raise TypeError('a TTL must be a duration such as "10m", not a boolean')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _WHOLE.match(text):
            seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(text))
        else:
            raise ValueError(
                f"cannot read TTL {value!r}: use a number of seconds or units s, m, h, d, w "
                'such as "30s", "10m", "1h30m", "2d"'
            )
    if not seconds > 0:
        raise ValueError(f"a TTL must be positive, got {value!r}")
    return seconds


def format_ttl(seconds: float) -> str:
    """A short reading of a remaining TTL, rounded up to the second: ``"1h2m3s"``."""
    total = max(0, int(-(-seconds // 1)))
    if total == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
