"""Rate-limit rules as typed data, parsed from the dict a TOML table becomes.

Rules are data so that a new limit never needs a code change. Parsing is strict: an unknown
key is an error (a typo such as ``brust`` would otherwise silently mean "no burst"), and
every error names the key path, e.g. ``rules[2].match.methods[0]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sentinel_agents.ratelimit.gcra import GcraLimit

KeySource = Literal["client_ip", "path", "route", "method", "global", "header"]

_SIMPLE_SOURCES: frozenset[str] = frozenset({"client_ip", "path", "route", "method", "global"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class RateLimitConfigError(ValueError):
    """A config value that cannot be used; ``key`` is its path inside the rate-limit table."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


@dataclass(frozen=True, slots=True)
class KeyPart:
    """One component of a bucket key: a request attribute, or one header's value."""

    source: KeySource
    header: str = ""

    def spelling(self) -> str:
        """The config spelling, e.g. ``client_ip`` or ``header:x-api-key``."""
        return f"header:{self.header}" if self.source == "header" else self.source


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A header that must be present (``value`` None) or equal ``value`` exactly."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Conditions that all must hold; an empty match applies to every request.

    Each list is an "any of": ``routes = ["api", "auth"]`` matches either route.
    """

    routes: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    headers: tuple[HeaderMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """A named limit applied to requests its ``match`` selects, bucketed by ``key``."""

    name: str
    limit: GcraLimit
    key: tuple[KeyPart, ...] = (KeyPart("client_ip"),)
    match: RuleMatch = RuleMatch()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """All rules in order (first match wins), a global dry-run switch and the key bound."""

    rules: tuple[RateLimitRule, ...]
    dry_run: bool = False
    max_keys: int = 100_000


def parse_rate_limit_config(raw: Mapping[str, object]) -> RateLimitConfig:
    """Build a `RateLimitConfig` from a TOML-shaped dict; raises `RateLimitConfigError`."""
    _reject_unknown(raw, {"rules", "dry_run", "max_keys"}, "")
    dry_run = _bool(raw.get("dry_run", False), "dry_run")
    max_keys = _int(raw.get("max_keys", 100_000), "max_keys", minimum=1)
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise RateLimitConfigError("rules", "must be an array of tables ([[rules]])")
    rules = tuple(_rule(item, f"rules[{i}]") for i, item in enumerate(rules_raw))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise RateLimitConfigError(f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    return RateLimitConfig(rules=rules, dry_run=dry_run, max_keys=max_keys)


def parse_key(value: object, where: str) -> tuple[KeyPart, ...]:
    """``"client_ip"``, ``"header:x-api-key"`` or a list of those (a composite key)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise RateLimitConfigError(where, "must be a key name or a non-empty list of key names")
    parts: list[KeyPart] = []
    for i, item in enumerate(items):
        at = where if isinstance(value, str) else f"{where}[{i}]"
        if not isinstance(item, str):
            raise RateLimitConfigError(at, f"must be a string, got {item!r}")
        if item.startswith("header:") and len(item) > len("header:"):
            parts.append(KeyPart("header", item[len("header:") :].strip().lower()))
        elif item in _SIMPLE_SOURCES:
            parts.append(KeyPart(item))  # type: ignore[arg-type]
        else:
            raise RateLimitConfigError(
                at,
                f"unknown key {item!r}; use one of client_ip, path, route, method, global "
                "or header:<name>",
            )
    return tuple(parts)


def parse_period(value: object, where: str) -> float:
    """Seconds from a number or a string such as ``"1s"``, ``"500ms"``, ``"1m"``."""
    if isinstance(value, bool):
        raise RateLimitConfigError(where, 'must be a duration such as "1s", got a boolean')
    if isinstance(value, int | float) and value > 0:
        return float(value)
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found and float(found.group(1)) > 0:
            return float(found.group(1)) * _UNIT_S[found.group(2) or "s"]
    raise RateLimitConfigError(where, f'must be a positive duration such as "1s", got {value!r}')


def _rule(raw: object, where: str) -> RateLimitRule:
    if not isinstance(raw, Mapping):
        raise RateLimitConfigError(where, "must be a table")
    _reject_unknown(raw, {"name", "match", "key", "rate", "period", "burst", "dry_run"}, where)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise RateLimitConfigError(f"{where}.name", "is required and must be a non-empty string")
    if "rate" not in raw:
        raise RateLimitConfigError(f"{where}.rate", "is required (requests per period)")
    rate = _number(raw["rate"], f"{where}.rate")
    period = parse_period(raw.get("period", 1.0), f"{where}.period")
    burst = _int(raw.get("burst", max(1, round(rate))), f"{where}.burst", minimum=1)
    try:
        limit = GcraLimit.of(rate, period, burst)
    except ValueError as exc:
        raise RateLimitConfigError(f"{where}.rate", str(exc)) from None
    return RateLimitRule(
        name=name,
        limit=limit,
        key=parse_key(raw.get("key", "client_ip"), f"{where}.key"),
        match=_match(raw.get("match", {}), f"{where}.match"),
        dry_run=_bool(raw.get("dry_run", False), f"{where}.dry_run"),
    )


def _match(raw: object, where: str) -> RuleMatch:
    if not isinstance(raw, Mapping):
        raise RateLimitConfigError(where, "must be a table")
    _reject_unknown(raw, {"route", "path_prefix", "method", "header"}, where)
    header_raw = raw.get("header", [])
    header_items = [header_raw] if isinstance(header_raw, Mapping) else header_raw
    if not isinstance(header_items, list):
        raise RateLimitConfigError(f"{where}.header", "must be a table or an array of tables")
    headers = tuple(
        _header(
            item, f"{where}.header" if isinstance(header_raw, Mapping) else f"{where}.header[{i}]"
        )
        for i, item in enumerate(header_items)
    )
    return RuleMatch(
        routes=_strings(raw.get("route", []), f"{where}.route"),
        path_prefixes=_strings(raw.get("path_prefix", []), f"{where}.path_prefix"),
        methods=tuple(m.upper() for m in _strings(raw.get("method", []), f"{where}.method")),
        headers=headers,
    )


def _header(raw: object, where: str) -> HeaderMatch:
    if not isinstance(raw, Mapping):
        raise RateLimitConfigError(where, "must be a table with name and optional value")
    _reject_unknown(raw, {"name", "value"}, where)
    name, value = raw.get("name"), raw.get("value")
    if not isinstance(name, str) or not name:
        raise RateLimitConfigError(f"{where}.name", "is required and must be a header name")
    if value is not None and not isinstance(value, str):
        raise RateLimitConfigError(f"{where}.value", f"must be a string, got {value!r}")
    return HeaderMatch(name.strip().lower(), value)


def _strings(value: object, where: str) -> tuple[str, ...]:
    items: Sequence[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise RateLimitConfigError(where, "must be a string or an array of strings")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise RateLimitConfigError(f"{where}[{i}]", f"must be a non-empty string, got {item!r}")
    return tuple(str(item) for item in items)


def _reject_unknown(raw: Mapping[str, object], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            known = ", ".join(sorted(allowed))
            raise RateLimitConfigError(path, f"unknown key; expected one of {known}")


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise RateLimitConfigError(where, f"must be true or false, got {value!r}")
    return value


def _int(value: object, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RateLimitConfigError(where, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RateLimitConfigError(where, f"must be a positive number, got {value!r}")
    return float(value)
