"""Human durations in config: ``"250ms"``, ``"10s"``, ``"5m"``, ``"2d"`` or plain seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string with a unit; raises ValueError with a hint."""
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic turns ValueErrors into config issues.
        raise ValueError('expected a duration such as "500ms" or "10s", not true/false')  # noqa: TRY004
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f'expected a duration such as "500ms", "10s" or "5m", got {value!r}')


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` that `parse_duration` reads back."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
