"""Threat chains: one request, the upstream processes it drove, and what they did, as one story.

A chain starts at a notable kernel event of an upstream's process tree (see
`upstreams.UpstreamDirectory` for which pid serves which upstream, and
`chain_steps.describe_event` for what is notable). It is linked to the access record of the
request the server was answering: same upstream, the event inside the request's
``[start, start + latency + window]``, a request with agent findings (WAF tags or rule ids)
preferred. Kernel events usually reach the hub before the access record (the record is
written when the response ends), so an unlinked chain waits for its request; a request
waits ``window`` seconds for late events. Processes the server started are followed for the
chain's life (fork and exec adopt them); the server itself never is, since it serves every
later request too. Alerts of the rules engine about the chain's processes refine the step
they are about (rule, technique, severity) or add one.

A chain is reported (rule ``threat_chain``) once it has two steps, one of them more than
the request; it is reported again, same ``chain_id``, when its severity rises or a new
technique appears, and once more when it closes if steps were added since. Memory is
bounded: chains close after ``idle`` seconds without a step, at most ``max_chains`` (the
least recently active go first) and ``max_per_client`` per client ip, ``max_steps`` steps
and ``max_pids`` processes each. Pure: time is passed in.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass

from sentinel_stack.detect.alert import Alert
from sentinel_stack.detect.chain_model import RULE, Node, Request, Step, ThreatChain
from sentinel_stack.detect.chain_steps import chain_severity, describe_event, phase_of
from sentinel_stack.detect.events import ChildState, DetectEvent, HubAlert
from sentinel_stack.detect.pipeline import BaseAnalyzer, Components, PipelineContext
from sentinel_stack.detect.upstreams import (
    ServerMatch,
    UpstreamDirectory,
    upstreams_from_config,
)
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

__all__ = ["ChainSettings", "ChainTracker", "ThreatChain", "detector_components"]


@dataclass(frozen=True, slots=True)
class ChainSettings:
    window: float = 5.0  # how long after a request ends its server's acts still belong to it
    clock_slack: float = 0.05  # probe and proxy timestamps come from different processes
    idle: float = 600.0
    max_chains: int = 1000
    max_per_client: int = 16
    max_steps: int = 64
    max_pids: int = 256
    max_requests: int = 4096  # access records remembered per upstream
    merge_tolerance: float = 2.0  # an alert refines a kernel step of its pid this close in time


class ChainTracker(BaseAnalyzer):
    name = "chains"

    def __init__(self, directory: UpstreamDirectory, settings: ChainSettings | None = None) -> None:
        self.directory = directory
        self.settings = settings or ChainSettings()
        self.chains: OrderedDict[str, ThreatChain] = OrderedDict()
        self.evicted = 0
        self._by_pid: dict[int, str] = {}
        self._by_request: dict[str, str] = {}
        self._by_client: dict[str, list[str]] = {}
        self._requests: dict[str, deque[Request]] = {}

    # ---- analyzer protocol ---------------------------------------------------------------

    def observe(self, event: DetectEvent, now: float) -> list[Alert]:
        if isinstance(event, AccessRecord):
            return self._on_access(event, now)
        if isinstance(event, ev.KernelEvent):
            return self._on_kernel(event, now)
        if isinstance(event, HubAlert):
            # The detector's own alerts come back from the hub: `on_alert` saw them whole.
            if event.source != "detector" and event.request_id:
                return self._on_request_finding(event, now)
            return []
        if isinstance(event, ChildState):
            self.directory.on_state(event.child, event.pid, event.state)
        return []

    def on_alert(self, alert: Alert, now: float) -> list[Alert]:
        if alert.rule == RULE or alert.chain_id is not None or alert.process is None:
            return []
        process = alert.process
        lineage = [pid for a in process.lineage if isinstance(pid := a.get("pid"), int)]
        chain = self._chain_of(process.pid, lineage)
        match = self.directory.match(process.pid, lineage)
        if chain is None and match is None:
            return []
        step = Step(
            time=alert.time,
            kind="alert",
            summary=f"{alert.rule}: {alert.summary}",
            technique=alert.technique,
            pid=process.pid,
            severity=alert.severity,
            alert_id=alert.id,
        )
        if chain is None:
            assert match is not None
            chain = self._chain_for_server_act(match, alert.time, now)
            self._adopt_path(chain, match, process.pid, process.comm, process.exe, [])
        if any(s.alert_id == alert.id for s in chain.steps):
            return []
        target = self._unclaimed_kernel_step(chain, process.pid, alert.time)
        if target is None:
            chain.add(step, self.settings.max_steps)
        else:  # the rule names what the kernel step was: its words and technique win
            old, target.summary = target.technique, step.summary
            target.technique = alert.technique or target.technique
            target.severity, target.alert_id = alert.severity, alert.id
            if old in chain.reported_techniques and phase_of(old) == phase_of(target.technique):
                # A relabel within one phase (T1003.008 → T1552.001) is not news to report.
                chain.reported_techniques.add(target.technique or "")
                chain.dirty = True
        return self._changed(chain, now)

    def tick(self, now: float) -> list[Alert]:
        window = self.settings.window
        for queue in self._requests.values():
            while queue and queue[0].seen_at + window < now:
                queue.popleft()
        alerts: list[Alert] = []
        for chain in list(self.chains.values()):
            if chain.updated + self.settings.idle > now:
                break  # ordered by last activity: the rest are younger
            if chain.reported and chain.dirty:
                alerts.append(chain.to_alert(now))
            self._drop(chain)
        return alerts

    # ---- kernel events ------------------------------------------------------------------

    def _on_kernel(self, event: ev.KernelEvent, now: float) -> list[Alert]:
        if isinstance(event, ev.AcceptEvent):
            self.directory.on_accept(event)
            return []
        if isinstance(event, ev.ExitEvent):
            self.directory.on_exit(event.pid)
            self._by_pid.pop(event.pid, None)
            return []
        lineage = [a.pid for a in event.lineage]
        chain = self._chain_of(event.pid, lineage)
        match = self.directory.match(event.pid, lineage) if chain is None else None
        if chain is None and match is None:
            return []
        descendant = chain is not None or (match is not None and not match.is_server)
        described = describe_event(event, descendant)
        if chain is not None:
            if isinstance(event, ev.ForkEvent | ev.ExecEvent):
                self._adopt(chain, event.pid, event.ppid, event.comm, event.exe, event.argv)
            if described is None:
                return []
        else:
            assert match is not None
            if described is None:
                return []
            chain = self._chain_for_server_act(match, event.time, now)
            self._adopt_path(chain, match, event.pid, event.comm, event.exe, event.lineage)
            if event.argv is not None and event.pid in chain.tree:
                chain.tree[event.pid].argv = event.argv
        summary, technique = described
        kind = str(type(event).__struct_config__.tag)
        step = Step(event.time, kind, summary, technique, event.pid, from_kernel=True)
        claimed = self._unclaimed_alert_step(chain, event.pid, event.time)
        if claimed is not None:  # the rule's alert came first: it already tells this step
            claimed.from_kernel = True
        else:
            chain.add(step, self.settings.max_steps)
        chain.last_kernel = max(chain.last_kernel, event.time)
        return self._changed(chain, now)

    def _chain_of(self, pid: int, lineage: list[int]) -> ThreatChain | None:
        """The chain that adopted this process or one of its ancestors (below the server)."""
        for candidate in (pid, *lineage):
            chain_id = self._by_pid.get(candidate)
            if chain_id is not None:
                return self.chains.get(chain_id)
            if self.directory.is_server(candidate):
                return None
        return None

    def _chain_for_server_act(self, match: ServerMatch, when: float, now: float) -> ThreatChain:
        """The chain an act of (or just below) a server belongs to: the one whose request
        covers ``when``, else a recent unlinked one of the same upstream, else a new one."""
        s = self.settings
        best: ThreatChain | None = None
        for chain in reversed(self.chains.values()):
            if chain.upstream != match.upstream or chain.server_pid != match.server_pid:
                continue
            request = chain.request
            if request is not None:
                if request.start - s.clock_slack <= when <= request.end + s.window:
                    return chain
            elif abs(when - chain.last_kernel) <= s.window and best is None:
                best = chain
        if best is not None:
            return best
        chain = ThreatChain(
            id=uuid.uuid4().hex,
            upstream=match.upstream,
            server_pid=match.server_pid,
            anchor=when,
            updated=now,
            last_kernel=when,
        )
        self._insert(chain)
        request = self._request_covering(match.upstream, when)
        if request is not None:
            self._attach(chain, request)
        return chain

    def _adopt_path(
        self,
        chain: ThreatChain,
        match: ServerMatch,
        pid: int,
        comm: str,
        exe: str | None,
        lineage: list[ev.Ancestor],
    ) -> None:
        """Record the server and adopt the processes between it and ``pid``."""
        names = {a.pid: a for a in lineage}
        server = names.get(match.server_pid)
        if match.server_pid not in chain.tree:
            chain.tree[match.server_pid] = Node(
                match.server_pid,
                None,
                server.comm if server else (comm if match.is_server else "?"),
                server.exe if server else (exe if match.is_server else None),
            )
        path = list(match.path)
        for index, member in enumerate(path):
            parent = path[index + 1] if index + 1 < len(path) else match.server_pid
            known = names.get(member)
            if member == pid:
                self._adopt(chain, member, parent, comm, exe, None)
            else:
                self._adopt(chain, member, parent, known.comm if known else "?", None, None)

    def _adopt(
        self,
        chain: ThreatChain,
        pid: int,
        ppid: int | None,
        comm: str,
        exe: str | None,
        argv: list[str] | None,
    ) -> None:
        if self.directory.is_server(pid):
            return
        node = chain.tree.get(pid)
        if node is None:
            if len(chain.tree) >= self.settings.max_pids:
                return
            chain.tree[pid] = Node(pid, ppid, comm, exe, argv)
        else:  # exec: same pid, new program
            node.comm, node.exe = comm or node.comm, exe or node.exe
            node.argv = argv if argv is not None else node.argv
        self._by_pid[pid] = chain.id

    # ---- access records and agent findings ----------------------------------------------

    def _on_access(self, record: AccessRecord, now: float) -> list[Alert]:
        if not record.upstream:
            return []
        findings = tuple(dict.fromkeys([*record.tags, *record.rule_ids]))
        waf = f" [findings: {', '.join(findings)}]" if findings else ""
        request = Request(
            request_id=record.request_id,
            client_ip=record.client_ip,
            start=record.time,
            end=record.time + record.latency_ms / 1000.0,
            findings=findings,
            summary=f"{record.method} {record.path} → {record.status} from "
            f"{record.client_ip or '?'} via {record.upstream}{waf}",
            seen_at=now,
        )
        queue = self._requests.setdefault(record.upstream, deque(maxlen=self.settings.max_requests))
        queue.append(request)
        alerts: list[Alert] = []
        s = self.settings
        # Newest activity first; a chain idle since before this request started cannot be
        # one it caused (a second of margin for the detector lagging behind event times).
        for chain in list(reversed(self.chains.values())):
            if chain.updated < request.start - s.clock_slack - 1.0:
                break
            if chain.upstream != record.upstream:
                continue
            if not request.start - s.clock_slack <= chain.anchor <= request.end + s.window:
                continue
            current = chain.request
            if current is None or (findings and not current.findings):
                self._attach(chain, request)
                # Reported with another request: who did it changed, so say so again.
                alerts += self._changed(chain, now, force=current is not None)
        return alerts

    def _on_request_finding(self, alert: HubAlert, now: float) -> list[Alert]:
        chain_id = self._by_request.get(alert.request_id or "")
        chain = self.chains.get(chain_id) if chain_id else None
        if chain is None:
            return []
        chain.add(
            Step(
                alert.time,
                "alert",
                f"{alert.source} {alert.rule}: {alert.summary}",
                alert.technique,
                severity=alert.severity,
            ),
            self.settings.max_steps,
        )
        return self._changed(chain, now)

    def _request_covering(self, upstream: str, when: float) -> Request | None:
        s = self.settings
        candidates = [
            r
            for r in self._requests.get(upstream, ())
            if r.start - s.clock_slack <= when <= r.end + s.window
        ]
        if not candidates:
            return None
        # Agent findings first, then the request that started last before the act.
        return max(candidates, key=lambda r: (bool(r.findings), r.start <= when, r.start))

    def _attach(self, chain: ThreatChain, request: Request) -> None:
        chain.steps = [s for s in chain.steps if s.kind != "access"]
        if chain.request_id:
            self._by_request.pop(chain.request_id, None)
        if chain.client_ip:
            owned = self._by_client.get(chain.client_ip, [])
            if chain.id in owned:
                owned.remove(chain.id)
        chain.request, chain.request_id = request, request.request_id or None
        chain.client_ip = request.client_ip or None
        if chain.request_id:
            self._by_request[chain.request_id] = chain.id
        if chain.client_ip:
            owned = self._by_client.setdefault(chain.client_ip, [])
            owned.append(chain.id)
            while len(owned) > self.settings.max_per_client:
                self._evict(owned.pop(0))
        chain.steps.insert(0, Step(request.start, "access", request.summary, "T1190"))

    # ---- bookkeeping --------------------------------------------------------------------

    def _changed(self, chain: ThreatChain, now: float, force: bool = False) -> list[Alert]:
        chain.updated = now
        self.chains.move_to_end(chain.id)
        chain.severity = chain_severity(
            chain.techniques, (s.severity for s in chain.steps if s.severity)
        )
        if not chain.reportable:
            return []
        techniques = set(chain.techniques)
        rank = ("info", "low", "medium", "high", "critical")
        if (
            chain.reported
            and not force
            and rank.index(chain.severity) <= rank.index(chain.reported_severity)
            and techniques <= chain.reported_techniques
        ):
            chain.dirty = True
            return []
        chain.reported, chain.dirty = True, False
        chain.reported_severity, chain.reported_techniques = chain.severity, techniques
        return [chain.to_alert(now)]

    def _unclaimed_kernel_step(self, chain: ThreatChain, pid: int, when: float) -> Step | None:
        for step in reversed(chain.steps):
            if (
                step.pid == pid
                and step.from_kernel
                and step.alert_id is None
                and abs(step.time - when) <= self.settings.merge_tolerance
            ):
                return step
        return None

    def _unclaimed_alert_step(self, chain: ThreatChain, pid: int, when: float) -> Step | None:
        for step in reversed(chain.steps):
            if (
                step.pid == pid
                and step.alert_id is not None
                and not step.from_kernel
                and abs(step.time - when) <= self.settings.merge_tolerance
            ):
                return step
        return None

    def _insert(self, chain: ThreatChain) -> None:
        while len(self.chains) >= self.settings.max_chains:
            self._evict(next(iter(self.chains)))
        self.chains[chain.id] = chain

    def _evict(self, chain_id: str) -> None:
        chain = self.chains.get(chain_id)
        if chain is not None:
            self.evicted += 1
            self._drop(chain)

    def _drop(self, chain: ThreatChain) -> None:
        self.chains.pop(chain.id, None)
        for pid in chain.tree:
            if self._by_pid.get(pid) == chain.id:
                del self._by_pid[pid]
        if chain.request_id and self._by_request.get(chain.request_id) == chain.id:
            del self._by_request[chain.request_id]
        if chain.client_ip:
            owned = self._by_client.get(chain.client_ip)
            if owned is not None and chain.id in owned:
                owned.remove(chain.id)
                if not owned:
                    del self._by_client[chain.client_ip]


def detector_components(context: PipelineContext) -> Components:
    """The pipeline's plug-in hook: one tracker over the config's upstreams."""
    config = context.config
    upstreams = upstreams_from_config(config.upstreams) if config is not None else []
    return Components(analyzers=[ChainTracker(UpstreamDirectory(upstreams, context.stack))])
