"""Which events become audit records, and of which type. Pure: JSON lines and supervisor
events in, `AuditEntry` (or None) out.

- hub ``alert`` → ``alert`` (the whole alert);
- hub ``access`` decided by an agent (block, redirect, challenge) → ``block``; access
  records that were simply allowed are traffic, not audit, and are skipped;
- hub ``policy.decision`` (the policy agent's OPA-shaped decision log) → ``policy_decision``;
- hub ``remediation`` → ``remediation``;
- supervisor state changes: a child spawned again → ``process_restart``; a crash →
  ``process_exit``; given up on → ``process_fatal``; being stopped → ``process_stop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from sentinel_stack.supervisor.events import StateChange

HUB_KINDS = ("alert", "access", "policy.decision", "remediation")
_HUB_TYPES = {"alert": "alert", "policy.decision": "policy_decision", "remediation": "remediation"}
_NOT_DECIDED = frozenset({"allow", "none", ""})


@dataclass(frozen=True)
class AuditEntry:
    type: str
    data: dict[str, Any]


class _Call(msgspec.Struct):
    agent: str = ""
    action: str = ""


class _Peek(msgspec.Struct):
    """Just enough of a hub line to decide; most access lines stop here."""

    kind: str
    decided_by: str = ""
    agents: list[_Call] = []


_peek = msgspec.json.Decoder(_Peek)
_full = msgspec.json.Decoder(dict[str, Any])


class UnreadableEvent(ValueError):
    """The hub accepted the line (it reads only ``kind``) but its full JSON does not
    decode — invalid UTF-8 in some field, say. The caller counts it as a gap."""


def entry_from_hub(line: bytes) -> AuditEntry | None:
    """The record for one hub line, or None when it is not audit material."""
    try:
        return _entry(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise UnreadableEvent(str(exc)) from None


def _entry(line: bytes) -> AuditEntry | None:
    peek = _peek.decode(line)
    if peek.kind == "access":
        if not peek.decided_by and not any(c.action == "block" for c in peek.agents):
            return None
        data = _full.decode(line)
        action = next((c.action for c in peek.agents if c.agent == peek.decided_by), "block")
        data["action"] = action if action not in _NOT_DECIDED else "block"
        return AuditEntry("block", data)
    record_type = _HUB_TYPES.get(peek.kind)
    if record_type is None:
        return None
    return AuditEntry(record_type, _full.decode(line))


class StateAuditor:
    """Turns supervisor state changes into records; remembers who has started before."""

    def __init__(self) -> None:
        self._started: set[str] = set()

    def entry(self, change: StateChange) -> AuditEntry | None:
        data = {
            "child": change.child,
            "state": change.state,
            "previous": change.previous,
            "reason": change.reason,
            "pid": change.pid,
            "event_time": change.time,
        }
        match change.state:
            case "starting" if change.previous == "starting" and change.pid is not None:
                # The "spawned" step (it carries the new pid); the step into `starting`
                # before it would count a start that never got a process.
                again = change.child in self._started
                self._started.add(change.child)
                return AuditEntry("process_restart", data) if again else None
            case "fatal":
                return AuditEntry("process_fatal", data)
            case "backoff" | "exited" if change.previous in ("running", "starting"):
                return AuditEntry("process_exit", data)
            case "stopping":
                return AuditEntry("process_stop", data)
        return None
