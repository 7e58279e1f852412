"""The engine: kind index, alert shape, stateful rules, dedup and rate limits, the pipeline."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sentinel_stack.detect.alert import ALERT_DECODER, ALERT_ENCODER, Alert
from sentinel_stack.detect.engine import RuleEngine
from sentinel_stack.detect.events import (
    ChildState,
    HubAlert,
    OtherEvent,
    decode_event,
    decode_stream_line,
)
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.pipeline import (
    BaseAnalyzer,
    Components,
    DetectorPipeline,
    PipelineContext,
    load_components,
)
from sentinel_stack.detect.rules_loader import load_rule_texts
from sentinel_stack.probe import events as ev
from tests.detect.detectkit import (
    DEMO,
    LAUNCHER_A,
    T0,
    access,
    connect,
    engine,
    exec_,
    open_,
    stack_view,
)

RULES = """
[lists]
shells = ["sh", "bash"]

[[rules]]
id = "shell"
condition = "evt.kind = kernel.exec and proc.name in shells"
severity = "high"
tactic = "execution"
technique = "T1059.004"
tags = ["shell"]
output = "shell %proc.name (pid {proc.pid}) under %proc.pname; fd %fd.name."

[[rules]]
id = "any_custom"
condition = "evt.kind = custom.thing"
severity = "info"
output = "custom event from %evt.source"

[[rules]]
id = "ordered"
severity = "medium"
output = "%req.path then %proc.name"
[rules.sequence]
window = "5s"
[[rules.sequence.steps]]
condition = "evt.kind = access"
[[rules.sequence.steps]]
condition = "evt.kind = kernel.exec and proc.name = id"

[[rules]]
id = "bursts"
condition = "evt.kind = kernel.connect"
severity = "low"
output = "%match.count connects in %match.window s by %proc.pid"
[rules.threshold]
count = 3
window = "1s"
by = ["proc.pid"]
"""


def make(**folder: Any) -> RuleEngine:
    ruleset = load_rule_texts([("t.toml", RULES)])
    fold = AlertFolder(**folder) if folder else AlertFolder(window=0.0, per_minute=1e9, burst=10**9)
    return RuleEngine(ruleset, stack_view(), folder=fold)


def test_an_event_meets_only_the_rules_that_can_match_its_kind() -> None:
    eng = make()
    assert eng.rules_for("kernel.exec") == 2  # shell, and the second step of `ordered`
    assert eng.rules_for("access") == 1
    assert eng.rules_for("kernel.open") == 0
    assert eng.rules_for(None) == 1  # `any_custom` only: evt.kind is all it can test
    assert eng.reach["shell"] == ["kernel.exec"]
    assert eng.reach["ordered"] == ["access", "kernel.exec"]


def test_the_alert_carries_the_contract_shape() -> None:
    eng = make()
    event = exec_(["bash", "-c", "id"], comm="bash")
    [alert] = eng.observe(event, T0)
    assert alert.rule == "shell" and alert.source == "detector" and alert.severity == "high"
    assert (alert.tactic, alert.technique) == ("execution", "T1059.004")
    assert alert.tags == ["shell", "attack.T1059.004", "attack.execution"]
    assert alert.summary == "shell bash (pid 1234) under python3; fd <NA>."
    assert alert.fields == {
        "proc.name": "bash",
        "proc.pid": 1234,
        "proc.pname": "python3",
        "fd.name": None,
    }
    assert alert.process is not None and alert.process.argv == ["bash", "-c", "id"]
    assert [a["pid"] for a in alert.process.lineage] == [DEMO, 100]
    wire = ALERT_ENCODER.encode(alert)
    assert msgspec.json.decode(wire)["kind"] == "alert"
    assert ALERT_DECODER.decode(wire) == alert


def test_unknown_kinds_reach_rules_on_evt_fields() -> None:
    eng = make()
    [alert] = eng.observe(OtherEvent(kind="custom.thing", time=T0, source="agent-x"), T0)
    assert alert.summary == "custom event from agent-x"


def test_a_sequence_fires_in_order_only_and_lists_its_chain() -> None:
    eng = make()
    request = access("/x", time=T0, client_ip="127.0.0.7")
    run = exec_(["id"], comm="id", time=T0 + 1)
    assert [a.rule for a in eng.observe(run, T0)] == []  # step 2 before step 1: nothing
    assert eng.observe(request, T0) == []
    [alert] = [
        a for a in eng.observe(exec_(["id"], comm="id", time=T0 + 2), T0) if a.rule == "ordered"
    ]
    assert alert.summary == "/x then id"
    assert alert.client_ip == "127.0.0.7"
    assert [s.kind for s in alert.chain] == ["access", "kernel.exec"]
    late = exec_(["id"], comm="id", time=T0 + 10)
    assert [a.rule for a in eng.observe(access("/y", time=T0 + 3), T0)] == []
    assert [a.rule for a in eng.observe(late, T0)] == []  # 7 s after the request: too late


def test_a_threshold_counts_per_group_within_its_window_and_restarts() -> None:
    eng = make()
    hits = [connect("10.0.0.1", 80, pid=7, time=T0 + i * 0.1) for i in range(6)]
    other = [connect("10.0.0.1", 80, pid=8, time=T0 + i * 0.1) for i in range(2)]
    found = [a for e in [*hits, *other] for a in eng.observe(e, e.time) if a.rule == "bursts"]
    assert [a.summary for a in found] == ["3 connects in 1.0 s by 7"] * 2
    spread = [connect("10.0.0.1", 80, pid=9, time=T0 + i * 0.6) for i in range(6)]
    assert not [a for e in spread for a in eng.observe(e, e.time) if a.rule == "bursts"]


def test_repeats_fold_into_one_alert_with_a_count_after_the_window() -> None:
    eng = make(window=60.0, per_minute=1e9, burst=10**9)
    event = exec_(["sh"], comm="sh", pid=5)
    assert len(eng.observe(event, T0)) == 1
    for i in range(1, 10):
        assert eng.observe(event, T0 + i) == []
    assert eng.tick(T0 + 30) == []
    [repeat] = eng.tick(T0 + 61)
    assert (repeat.rule, repeat.count, repeat.summary) == (
        "shell",
        9,
        "shell sh (pid 5) under python3; fd <NA>.",
    )
    assert eng.folder.folded == 9
    assert len(eng.observe(event, T0 + 62)) == 1  # a new window
    different = exec_(["sh"], comm="sh", pid=6)
    assert len(eng.observe(different, T0 + 63)) == 1  # another key


def test_the_rate_limit_holds_back_a_flood_and_reports_it() -> None:
    eng = make(window=60.0, per_minute=6.0, burst=3)
    sent = [a for pid in range(10) for a in eng.observe(exec_(["sh"], comm="sh", pid=pid), T0)]
    assert len(sent) == 3
    [summary] = eng.tick(T0 + 1)
    assert summary.count == 7 and "rate limit" in summary.summary
    # Tokens come back at per_minute: one every 10 s.
    assert len(eng.observe(exec_(["sh"], comm="sh", pid=99), T0 + 12)) == 1


def test_child_state_events_keep_the_pid_map() -> None:
    eng = make()
    eng.observe(ChildState(child="demo", state="running", pid=555, time=T0), T0)
    assert eng.view.pids.get(555) == "demo"
    eng.observe(ChildState(child="demo", state="backoff", pid=555, time=T0), T0)
    assert 555 not in eng.view.pids


def test_reload_replaces_the_rules() -> None:
    eng = make()
    eng.load(
        load_rule_texts(
            [("t.toml", RULES.replace('"shells"', '"shells"').replace("in shells", "= zsh"))]
        )
    )
    assert eng.observe(exec_(["bash"], comm="bash"), T0) == []
    assert len(eng.observe(exec_(["zsh"], comm="zsh"), T0)) == 1


def test_decoding_hub_lines_and_stream_lines() -> None:
    kernel_line = ev.EVENT_ENCODER.encode(exec_(["sh"], comm="sh"))
    assert isinstance(decode_event(kernel_line), ev.ExecEvent)
    assert isinstance(decode_event(msgspec.json.encode(access("/a"))), type(access("/a")))
    probe = (
        b'{"kind":"alert","time":1,"source":"probe","rule":"probe.events_lost",'
        b'"severity":"warning","summary":"x","lost_events":3}'
    )
    found = decode_event(probe)
    assert isinstance(found, HubAlert) and found.lost_events == 3
    state = (
        b'{"id":1,"event":{"type":"state","child":"waf","state":"backoff",'
        b'"previous":"running","reason":"exit 1","pid":9,"time":2.0}}'
    )
    assert isinstance(decode_stream_line(state), ChildState)
    other = decode_stream_line(b'{"id":1,"event":{"kind":"policy.decision","time":3,"x":1}}')
    assert isinstance(other, OtherEvent) and other.data["x"] == 1
    assert decode_stream_line(b'{"id":1,"ok":true}') is None
    assert decode_event(b"not json") is None


class _Boom(BaseAnalyzer):
    name = "boom"

    def observe(self, event: Any, now: float) -> list[Alert]:
        raise RuntimeError("bug")


class _Echo(BaseAnalyzer):
    name = "echo"

    def on_alert(self, alert: Alert, now: float) -> list[Alert]:
        return [msgspec.structs.replace(alert, rule="echo")] if alert.rule != "echo" else []


class _Sink:
    name = "list"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def submit(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def run(self) -> None:
        pass


def test_the_pipeline_survives_a_broken_analyzer_and_feeds_alerts_back() -> None:
    sink = _Sink()
    pipeline = DetectorPipeline([make(), _Boom(), _Echo()], [sink])
    out = pipeline.process(exec_(["sh"], comm="sh"), T0)
    assert [a.rule for a in out] == ["shell", "echo"]
    assert [a.rule for a in sink.alerts] == ["shell", "echo"]
    assert pipeline.analyzer_errors == 1


def test_components_come_from_modules_that_define_the_hook(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plug_ok.py").write_text(
        "from sentinel_stack.detect.pipeline import Components, BaseAnalyzer\n"
        "def detector_components(context):\n"
        "    return Components(analyzers=[BaseAnalyzer()])\n"
    )
    (tmp_path / "plug_none.py").write_text("x = 1\n")
    (tmp_path / "plug_broken.py").write_text("def detector_components(context):\n    1 / 0\n")
    (tmp_path / "plug_dep.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("plug_ok", "plug_none", "plug_missing", "plug_broken", "plug_dep")
    found = load_components(PipelineContext(), names)
    assert isinstance(found, Components) and len(found.analyzers) == 1


def test_the_default_rules_on_an_open_storm_cost_nothing_but_the_lookup() -> None:
    eng = engine()
    benign = open_("/srv/app/data.json", 0, (), comm="python3", pid=DEMO, lineage=[LAUNCHER_A])
    assert all(eng.observe(benign, T0) == [] for _ in range(100))
