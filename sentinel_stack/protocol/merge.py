"""Combine the decisions of several agents about one request into the one the proxy applies.

Pure and order-sensitive on purpose: agents are listed in pipeline order, and that order is
the priority. The rules (also in docs/agent-protocol.md):

- the first block, redirect or challenge in agent order wins and names ``decided_by``;
- header operations of every agent merge: removes and adds accumulate in order, and for a
  ``set`` of the same name the earlier agent wins;
- audit tags and rule ids accumulate (deduplicated, first occurrence kept), and each agent's
  audit note is kept whole in ``audits``;
- agents whose latest answer is ``needs_more`` are listed in ``pending``: the proxy keeps
  streaming the body to them unless the result is already terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from sentinel_stack.protocol.decisions import (
    Action,
    Allow,
    Audit,
    Block,
    Challenge,
    Decision,
    HeaderField,
    HeaderOps,
    NeedsMore,
    Redirect,
)

__all__ = ["AgentAudit", "MergedDecision", "merge_decisions", "merge_header_ops"]


class AgentAudit(msgspec.Struct, frozen=True):
    """One agent's audit note, named by the agent that wrote it."""

    agent: str
    audit: Audit


class MergedDecision(msgspec.Struct, frozen=True):
    """The pipeline's combined answer. ``decided_by`` is None when nobody blocked."""

    action: Action
    decided_by: str | None
    request_headers: HeaderOps
    response_headers: HeaderOps
    tags: tuple[str, ...]
    rule_ids: tuple[str, ...]
    audits: tuple[AgentAudit, ...]
    pending: tuple[str, ...]

    @property
    def is_terminal(self) -> bool:
        """True when the proxy answers the client itself instead of forwarding."""
        return isinstance(self.action, Block | Redirect | Challenge)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def merge_header_ops(ops: Sequence[HeaderOps]) -> HeaderOps:
    """Merge header operations listed in priority order into one remove → set → add batch."""
    removes: dict[str, str] = {}
    sets: dict[str, HeaderField] = {}
    adds: list[HeaderField] = []
    for op in ops:
        for name in op.remove:
            removes.setdefault(name.lower(), name)
        for name, value in op.set:
            sets.setdefault(name.lower(), (name, value))
        adds.extend(op.add)
    return HeaderOps(tuple(removes.values()), tuple(sets.values()), tuple(adds))


def merge_decisions(decisions: Sequence[tuple[str, Decision]]) -> MergedDecision:
    """Merge ``(agent name, decision)`` pairs, listed in pipeline order."""
    action: Action = Allow()
    decided_by: str | None = None
    pending: list[str] = []
    audits: list[AgentAudit] = []
    for name, decision in decisions:
        if isinstance(decision.action, NeedsMore):
            pending.append(name)
        elif decided_by is None and not isinstance(decision.action, Allow):
            action, decided_by = decision.action, name
        if decision.audit is not None:
            audits.append(AgentAudit(name, decision.audit))
    return MergedDecision(
        action=action,
        decided_by=decided_by,
        request_headers=merge_header_ops([d.request_headers for _, d in decisions]),
        response_headers=merge_header_ops([d.response_headers for _, d in decisions]),
        tags=_unique(tag for entry in audits for tag in entry.audit.tags),
        rule_ids=_unique(rule for entry in audits for rule in entry.audit.rule_ids),
        audits=tuple(audits),
        pending=tuple(pending),
    )
