"""The remediation decision: a Rego policy reads an alert and names actions. Pure.

Input document (``input`` in the policy)::

    {"alert":   <the alert, as on the hub>,
     "client":  {"ip": "203.0.113.7", "loopback": false, "private": false} | null,
     "process": {"pid": 4242, "comm": "sh", "stack_child": "demo"} | null,
     "stack":   {"name": "default"},
     "now":     1700000000.0}

``client`` facts are computed here because rego-cpp has no ``net.cidr_contains``;
``process.stack_child`` names the stack child the alert's process belongs to (null: none).

Decision: ``data.sentinel.remediation.actions``, a set of objects, each one of::

    {"type": "deny_client", "ip": "203.0.113.7", "ttl": "15m", "reason": "..."}
    {"type": "kill", "pid": 4242, "reason": "..."}
    {"type": "stop", "child": "demo", "reason": "..."}

An action of another shape is refused (and audited as refused), never guessed at. A TTL
is clamped to ``max_ttl``; a missing one is ``default_ttl``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from sentinel_stack.config.durations import parse_duration
from sentinel_stack.detect.alert import Alert

__all__ = [
    "DECISION",
    "ActionMemory",
    "PolicyProblem",
    "RemediationAction",
    "RemediationPolicy",
    "build_input",
    "parse_actions",
]

DECISION = "data.sentinel.remediation.actions"
# "private" for the policy: networks operators run (RFC 1918, CGNAT, ULA, link-local). Not
# Python's `is_private`, which also counts the documentation ranges.
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)
ActionType = Literal["deny_client", "kill", "stop"]


class PolicyProblem(Exception):
    """The policy could not be read, compiled or evaluated; the message says where."""


@dataclass(frozen=True, slots=True)
class RemediationAction:
    type: ActionType
    reason: str
    ip: str | None = None
    ttl: float | None = None
    pid: int | None = None
    child: str | None = None

    @property
    def target(self) -> str:
        if self.type == "deny_client":
            return f"ip {self.ip}"
        if self.type == "kill":
            return f"pid {self.pid}"
        return f"child {self.child}"


class _RawAction(msgspec.Struct, forbid_unknown_fields=True):
    type: ActionType
    reason: str = ""
    ip: str | None = None
    ttl: str | float | None = None
    pid: int | None = None
    child: str | None = None


def build_input(alert: Alert, stack_child: str | None, stack: str, now: float) -> dict[str, Any]:
    client: dict[str, Any] | None = None
    if alert.client_ip:
        try:
            address = ipaddress.ip_address(alert.client_ip)
        except ValueError:
            client = {"ip": alert.client_ip, "loopback": False, "private": False, "valid": False}
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            client = {
                "ip": alert.client_ip,
                "loopback": address.is_loopback,
                "private": any(address in network for network in _PRIVATE),
                "valid": True,
            }
    process: dict[str, Any] | None = None
    if alert.process is not None:
        process = {
            "pid": alert.process.pid,
            "comm": alert.process.comm,
            "exe": alert.process.exe,
            "stack_child": stack_child,
        }
    return {
        "alert": msgspec.to_builtins(alert),
        "client": client,
        "process": process,
        "stack": {"name": stack},
        "now": now,
    }


def parse_actions(
    value: object, default_ttl: float, max_ttl: float
) -> tuple[list[RemediationAction], list[str]]:
    """(actions, problems) from the decision's value; undefined or empty means none."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], [f"{DECISION} must be a set of action objects, not {type(value).__name__}"]
    actions: list[RemediationAction] = []
    problems: list[str] = []
    for item in value:
        try:
            raw = msgspec.convert(item, _RawAction)
        except msgspec.ValidationError as exc:
            problems.append(f"action {item!r} refused: {exc}")
            continue
        problem = _check(raw)
        if problem:
            problems.append(f"action {item!r} refused: {problem}")
            continue
        ttl = None
        if raw.type == "deny_client":
            try:
                ttl = parse_duration(raw.ttl) if raw.ttl is not None else default_ttl
            except ValueError as exc:
                problems.append(f"action {item!r} refused: ttl: {exc}")
                continue
            ttl = min(max(ttl, 1.0), max_ttl)
        actions.append(RemediationAction(raw.type, raw.reason, raw.ip, ttl, raw.pid, raw.child))
    return actions, problems


def _check(raw: _RawAction) -> str | None:
    if raw.type == "deny_client":
        try:
            ipaddress.ip_address(raw.ip or "")
        except ValueError:
            return "deny_client needs an IP address in `ip`"
    elif raw.type == "kill":
        if raw.pid is None or raw.pid <= 1:
            return "kill needs a process id (> 1) in `pid`"
    elif not raw.child:
        return "stop needs a child name in `child`"
    return None


class RemediationPolicy:
    """One compiled policy file; `decide` evaluates it for an input document."""

    def __init__(self, path: Path, default_ttl: float = 900.0, max_ttl: float = 86400.0) -> None:
        # Imported here: regopy loads a C++ engine, only worth it when remediation is on.
        from sentinel_agents.policy.rego import RegoCompileError, RegoProgram

        self.path = path
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyProblem(
                f"remediation policy {path}: {exc.strerror or exc}; "
                "set [detector.remediation] policy to a .rego file"
            ) from None
        try:
            self._program = RegoProgram({path.name: source}, {}, DECISION)
        except RegoCompileError as exc:
            raise PolicyProblem(f"remediation policy {path}: {exc}") from None

    def decide(self, document: Mapping[str, Any]) -> tuple[list[RemediationAction], list[str]]:
        from sentinel_agents.policy.rego import UNDEFINED, RegoEvalError

        try:
            value = self._program.evaluate(document)
        except RegoEvalError as exc:
            return [], [f"remediation policy {self.path}: {exc}"]
        return parse_actions(None if value is UNDEFINED else value, self.default_ttl, self.max_ttl)


class ActionMemory:
    """Recently taken actions, so a burst of alerts about one attack acts once: the same
    action on the same target is skipped for its TTL (deny) or ``cooldown`` seconds."""

    def __init__(self, cooldown: float = 60.0, capacity: int = 4096) -> None:
        self.cooldown = cooldown
        self.capacity = capacity
        self._until: dict[tuple[str, str], float] = {}

    def recent(self, action: RemediationAction, now: float) -> bool:
        return self._until.get((action.type, action.target), 0.0) > now

    def remember(self, action: RemediationAction, now: float) -> None:
        if len(self._until) >= self.capacity:
            for key in [k for k, until in self._until.items() if until <= now]:
                del self._until[key]
            while len(self._until) >= self.capacity:
                del self._until[next(iter(self._until))]
        hold = action.ttl if action.ttl is not None else self.cooldown
        self._until[(action.type, action.target)] = now + hold
