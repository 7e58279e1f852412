"""The rule engine: rules indexed by event kind, evaluated as compiled closures, alerts folded.

`RuleEngine.load` compiles every enabled rule once per event kind; a rule whose condition
is constant-false for a kind (it tests `evt.kind = kernel.exec`, or a field only exec
events have) is not indexed under that kind, so an event meets only the rules that can
match it. `observe(event, now)` is then a dict lookup on the event's class and a loop of
predicate calls. Pure: no I/O, no clock; `now` drives dedup and expiry, event times drive
the windows of threshold and sequence rules (so a replay behaves as it did live).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sentinel_stack.detect.alert import Alert, ChainStep, FieldValue, ProcessInfo
from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.events import ChildState, DetectEvent, HubAlert
from sentinel_stack.detect.expr import KIND_CLASSES, KINDS, FieldSpec, compile_for
from sentinel_stack.detect.expr.fields import Const, Getter
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.pipeline import BaseAnalyzer
from sentinel_stack.detect.rules import MATCH_FIELDS, Rule, RuleSet
from sentinel_stack.detect.stateful import SequenceTracker, ThresholdTracker
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

__all__ = ["CLASS_KINDS", "RuleEngine", "describe_event", "kind_of"]

CLASS_KINDS: dict[type, str] = {cls: kind for kind, cls in KIND_CLASSES.items()}
Found = list[tuple[Alert, str, float | None]]
Handler = Callable[[Any], Found | None]
Entry = tuple[Callable[[Any], bool] | None, Handler]
NA = "<NA>"


def kind_of(event: DetectEvent) -> str | None:
    """The kind a rule sees (None for events without a schema: only `evt.*` fields)."""
    return CLASS_KINDS.get(type(event))


class RuleEngine(BaseAnalyzer):
    name = "rules"

    def __init__(
        self,
        ruleset: RuleSet,
        view: StackView | None = None,
        *,
        folder: AlertFolder | None = None,
        source: str = "detector",
    ) -> None:
        self.view = view if view is not None else StackView()
        self.folder = folder if folder is not None else AlertFolder()
        self.source = source
        self.events = 0
        self.matches = 0
        self.ruleset = ruleset
        self._index: dict[type, list[Entry]] = {}
        self._other: list[Entry] = []
        self._trackers: list[ThresholdTracker | SequenceTracker] = []
        # rule id -> the event kinds it is indexed under (None: kinds without a schema)
        self.reach: dict[str, list[str | None]] = {}
        self.load(ruleset)

    def load(self, ruleset: RuleSet) -> None:
        """Compile and index `ruleset`, replacing the current one (stateful memory restarts)."""
        index: dict[type, list[Entry]] = {cls: [] for cls in CLASS_KINDS}
        other: list[Entry] = []
        trackers: list[ThresholdTracker | SequenceTracker] = []
        reach: dict[str, list[str | None]] = {}
        buckets: list[tuple[str | None, list[Entry]]] = [
            *((kind, index[KIND_CLASSES[kind]]) for kind in KINDS),
            (None, other),
        ]
        for rule in ruleset.enabled:
            factory = _AlertFactory(rule, self.view, self.source)
            kinds = reach[rule.id] = []
            if rule.sequence is not None:
                sequence = SequenceTracker(rule.sequence)
                trackers.append(sequence)
                for number, step in enumerate(rule.sequence.steps):
                    for kind, bucket in buckets:
                        predicate = compile_for(step.condition, kind, self.view)
                        if predicate is not False:
                            key = _getter(step.key, kind, self.view)
                            handler = _sequence(factory, sequence, number, key, kind)
                            bucket.append((None if predicate is True else predicate, handler))
                            if kind not in kinds:
                                kinds.append(kind)
                continue
            assert rule.condition is not None
            threshold = ThresholdTracker(rule.threshold) if rule.threshold else None
            if threshold is not None:
                trackers.append(threshold)
            for kind, bucket in buckets:
                predicate = compile_for(rule.condition, kind, self.view)
                if predicate is False:
                    continue
                if threshold is None:
                    handler = _plain(factory, kind)
                else:
                    handler = _threshold(factory, threshold, kind, self.view)
                bucket.append((None if predicate is True else predicate, handler))
                kinds.append(kind)
        self._index, self._other, self._trackers = index, other, trackers
        self.reach = reach
        self.ruleset = ruleset

    def rules_for(self, kind: str | None) -> int:
        """How many rule entries an event of `kind` meets (for lint and the docs)."""
        entries = self._other if kind is None else self._index[KIND_CLASSES[kind]]
        return len(entries)

    def observe(self, event: DetectEvent, now: float) -> list[Alert]:
        self.events += 1
        cls = type(event)
        entries = self._index.get(cls)
        if entries is None:
            entries = self._other
        elif cls is ChildState:
            assert isinstance(event, ChildState)
            self.view.observe_state(event.child, event.state, event.pid)
        alerts: list[Alert] = []
        for predicate, handler in entries:
            if predicate is None or predicate(event):
                found = handler(event)
                if found:
                    self.matches += 1
                    for alert, key, window in found:
                        alerts.extend(self.folder.admit(alert, key, now, window))
        return alerts

    evaluate = observe

    def tick(self, now: float) -> list[Alert]:
        for tracker in self._trackers:
            tracker.expire(now)
        return self.folder.flush(now)


def _getter(spec: FieldSpec | None, kind: str | None, view: StackView) -> Getter:
    if spec is None:
        return lambda _e: None
    access = spec.access(kind, view)
    if isinstance(access, Const):
        value = access.value
        return lambda _e: value
    return access


def _plain(factory: _AlertFactory, kind: str | None) -> Handler:
    def matched(event: Any) -> Found:
        return [factory.build([(kind, event)])]

    return matched


def _threshold(
    factory: _AlertFactory, tracker: ThresholdTracker, kind: str | None, view: StackView
) -> Handler:
    threshold = factory.rule.threshold
    assert threshold is not None
    group_getters = [_getter(spec, kind, view) for spec in threshold.by]
    value_getter = _getter(threshold.distinct, kind, view)

    def matched(event: Any) -> Found | None:
        group: Hashable = tuple(_hashable(get(event)) for get in group_getters)
        counted = tracker.feed(group, _hashable(value_getter(event)), event.time)
        if counted is None:
            return None
        if tracker.distinct:
            match = {
                "match.count": len(counted),
                "match.values": _join(sorted(counted, key=str)[:20]),
            }
        else:
            match = {"match.count": counted[0], "match.values": ""}
        match["match.window"] = threshold.window
        return [factory.build([(kind, event)], match)]

    return matched


def _sequence(
    factory: _AlertFactory, tracker: SequenceTracker, step: int, key: Getter, kind: str | None
) -> Handler:
    def matched(event: Any) -> Found | None:
        steps = tracker.feed(step, _hashable(key(event)), (kind, event), event.time)
        if steps is None:
            return None
        ordered = sorted(steps, key=lambda s: s[0])
        match = {"match.count": len(steps), "match.values": "", "match.window": tracker.window}
        # Fields are read from the steps in rule order; the chain lists them in time order.
        return [factory.build([s[1] for s in steps], match, chain=[s[1] for s in ordered])]

    return matched


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _join(values: list[Any]) -> str:
    return ",".join(str(v) for v in values)


class _AlertFactory:
    """Builds one rule's alerts: renders the output, picks the fields, the process, the client."""

    def __init__(self, rule: Rule, view: StackView, source: str) -> None:
        self.rule = rule
        self.view = view
        self.source = source
        self._access: dict[tuple[str, str | None], Getter | Const] = {}
        self._fields = rule.output.fields + (rule.dedup_by or ())

    def read(
        self, spec: FieldSpec, events: list[tuple[str | None, Any]], match: dict[str, Any]
    ) -> Any:
        if spec.name in MATCH_FIELDS:
            return match.get(spec.name)
        for kind, event in events:
            access = self._access.get((spec.name, kind))
            if access is None:
                access = self._access[(spec.name, kind)] = spec.access(kind, self.view)
            value = access.value if isinstance(access, Const) else access(event)
            if value is not None:
                return value
        return None

    def build(
        self,
        events: list[tuple[str | None, Any]],
        match: dict[str, Any] | None = None,
        chain: list[tuple[str | None, Any]] | None = None,
    ) -> tuple[Alert, str, float | None]:
        rule, match = self.rule, match or {}
        values = {spec.name: _scalar(self.read(spec, events, match)) for spec in self._fields}
        summary = "".join(
            part if isinstance(part, str) else _text(values[part.name])
            for part in rule.output.parts
        )
        trigger = events[-1][1] if chain is None else chain[-1][1]
        alert = Alert(
            time=trigger.time,
            source=self.source,
            rule=rule.id,
            severity=rule.severity,
            summary=summary,
            tactic=rule.tactic,
            technique=rule.technique,
            tags=list(rule.tags),
            fields={spec.name: values[spec.name] for spec in rule.output.fields},
            process=_process(events),
            chain=[_step(kind, e) for kind, e in chain] if chain else [],
        )
        for _, event in events:
            if isinstance(event, AccessRecord | HubAlert) and event.client_ip:
                alert.client_ip = alert.client_ip or event.client_ip
                alert.request_id = alert.request_id or (event.request_id or None)
        if rule.dedup_by is None:
            key = summary
        else:
            key = "|".join(repr(values[spec.name]) for spec in rule.dedup_by)
        return alert, key, rule.dedup_window


def _scalar(value: Any) -> FieldValue:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _text(value: FieldValue) -> str:
    return NA if value is None or value == "" else str(value)


def _process(events: list[tuple[str | None, Any]]) -> ProcessInfo | None:
    for _, event in events:
        if isinstance(event, ev.KernelEvent):
            return ProcessInfo(
                pid=event.pid,
                comm=event.comm,
                exe=event.exe,
                argv=event.argv,
                uid=event.uid,
                lineage=[{"pid": a.pid, "comm": a.comm, "exe": a.exe} for a in event.lineage],
            )
    return None


def _step(kind: str | None, event: Any) -> ChainStep:
    return ChainStep(time=event.time, kind=kind or str(event.kind), summary=describe_event(event))


def describe_event(event: Any) -> str:
    """One line for a chain step or a `rules test` listing."""
    if isinstance(event, AccessRecord):
        target = event.target or event.path
        return f"{event.method} {target} from {event.client_ip or '?'} -> {event.status}"
    if isinstance(event, ev.ExecEvent):
        return f"{event.comm}[{event.pid}] exec {' '.join(event.argv or [event.filename])}"
    if isinstance(event, ev.OpenEvent | ev.ChmodEvent | ev.FileChangeEvent):
        verb = {ev.OpenEvent: "open", ev.ChmodEvent: "chmod"}.get(type(event)) or getattr(
            event, "op", ""
        )
        return f"{event.comm}[{event.pid}] {verb} {event.path}"
    if isinstance(event, ev.ConnectEvent) and event.remote is not None:
        return f"{event.comm}[{event.pid}] connect {event.remote.address}:{event.remote.port}"
    if isinstance(event, ev.KernelEvent):
        return f"{event.comm}[{event.pid}] {CLASS_KINDS.get(type(event), 'kernel')}"
    if isinstance(event, ChildState):
        return f"{event.child} {event.previous} -> {event.state} ({event.reason})"
    if isinstance(event, HubAlert):
        return f"alert {event.rule}: {event.summary}"
    return str(getattr(event, "kind", "event"))
