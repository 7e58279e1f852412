"""The threat chain itself: its steps, its process tree, and the alert that reports it.

Data only, filled by `chains.ChainTracker`; `ThreatChain.to_alert` renders the contract's
alert (rule ``threat_chain``, ordered ``chain`` steps, ``chain_id``, process tree in
``fields``). Pure.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sentinel_stack.detect.alert import Alert, ChainStep, FieldValue, ProcessInfo, Severity
from sentinel_stack.detect.chain_steps import tactic_of

__all__ = ["RULE", "Node", "Request", "Step", "ThreatChain"]

RULE = "threat_chain"


@dataclass(slots=True)
class Step:
    time: float
    kind: str
    summary: str
    technique: str | None = None
    pid: int | None = None
    severity: str | None = None
    alert_id: str | None = None
    from_kernel: bool = False

    def public(self) -> ChainStep:
        return ChainStep(
            time=self.time, kind=self.kind, summary=self.summary, technique=self.technique
        )


@dataclass(slots=True)
class Request:
    request_id: str
    client_ip: str
    start: float
    end: float
    findings: tuple[str, ...]
    summary: str
    seen_at: float


@dataclass(slots=True)
class Node:
    pid: int
    ppid: int | None
    comm: str
    exe: str | None = None
    argv: list[str] | None = None


@dataclass
class ThreatChain:
    id: str
    upstream: str
    server_pid: int
    anchor: float  # event time of the first kernel step: what a request's window must cover
    updated: float  # detector time of the last change
    client_ip: str | None = None
    request_id: str | None = None
    request: Request | None = None
    steps: list[Step] = field(default_factory=list)
    tree: dict[int, Node] = field(default_factory=dict)
    dropped_steps: int = 0
    severity: Severity = "medium"
    reported: bool = False
    reported_severity: Severity = "info"
    reported_techniques: set[str] = field(default_factory=set)
    dirty: bool = False
    last_kernel: float = 0.0  # event time of the latest kernel step

    @property
    def techniques(self) -> list[str]:
        """In step order, each once: ``T1190 → T1059.004 → T1552.001``."""
        seen: dict[str, None] = {}
        for step in self.steps:
            if step.technique:
                seen.setdefault(step.technique, None)
        return list(seen)

    def add(self, step: Step, limit: int) -> bool:
        if len(self.steps) >= limit:
            self.dropped_steps += 1
            return False
        bisect.insort(self.steps, step, key=lambda s: s.time)
        return True

    @property
    def reportable(self) -> bool:
        return len(self.steps) >= 2 and any(s.kind != "access" for s in self.steps)

    def process_tree(self) -> str:
        """``gunicorn[100] > sh[130] > cat[131]`` per leaf, leaves joined by ``; ``."""
        parents = {node.ppid for node in self.tree.values()}
        lines = []
        for node in self.tree.values():
            if node.pid in parents:
                continue
            path = [f"{node.comm}[{node.pid}]"]
            cursor: Node | None = node
            while cursor is not None and cursor.ppid in self.tree and len(path) < 16:
                cursor = self.tree[cursor.ppid]
                path.append(f"{cursor.comm}[{cursor.pid}]")
            lines.append(" > ".join(reversed(path)))
        return "; ".join(lines[:8])

    def to_alert(self, now: float) -> Alert:
        techniques = self.techniques
        who = self.client_ip or "an unknown client"
        flow = " → ".join(techniques) or "no technique"
        leaf = next(reversed(self.tree.values()), None) if self.tree else None
        fields: dict[str, FieldValue] = {
            "upstream": self.upstream,
            "server_pid": self.server_pid,
            "steps": len(self.steps),
            "techniques": flow,
            "process_tree": self.process_tree(),
        }
        if self.request is not None and self.request.findings:
            fields["findings"] = ",".join(self.request.findings)
        if self.dropped_steps:
            fields["dropped_steps"] = self.dropped_steps
        return Alert(
            time=now,
            rule=RULE,
            severity=self.severity,
            summary=f"threat chain from {who} via upstream {self.upstream}: {flow} "
            f"({len(self.steps)} steps)",
            tactic=tactic_of(techniques),
            technique=techniques[-1] if techniques else None,
            tags=["chain", *(f"attack.{t}" for t in techniques)],
            fields=fields,
            process=_process_info(leaf, self.tree) if leaf else None,
            client_ip=self.client_ip,
            request_id=self.request_id,
            chain=[s.public() for s in self.steps],
            chain_id=self.id,
        )


def _process_info(leaf: Node, tree: dict[int, Node]) -> ProcessInfo:
    lineage: list[dict[str, FieldValue]] = []
    cursor = tree.get(leaf.ppid) if leaf.ppid is not None else None
    while cursor is not None and len(lineage) < 16:
        lineage.append({"pid": cursor.pid, "comm": cursor.comm, "exe": cursor.exe})
        cursor = tree.get(cursor.ppid) if cursor.ppid is not None else None
    return ProcessInfo(pid=leaf.pid, comm=leaf.comm, exe=leaf.exe, argv=leaf.argv, lineage=lineage)
