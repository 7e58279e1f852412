"""Threat chains on synthetic events: linking, escalation, process tree, bounds."""

from __future__ import annotations

from pathlib import Path

import msgspec

from sentinel_stack.config.loader import load_config_text
from sentinel_stack.detect.alert import ALERT_DECODER, ALERT_ENCODER, Alert, ProcessInfo
from sentinel_stack.detect.chain_steps import chain_severity, describe_event
from sentinel_stack.detect.chains import ChainSettings, ChainTracker, detector_components
from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.events import ChildState, HubAlert
from sentinel_stack.detect.pipeline import PipelineContext
from sentinel_stack.detect.upstreams import UpstreamDirectory, UpstreamInfo
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

REPO = Path(__file__).resolve().parents[2]
SERVER = 100
T0 = 1_000.0


def tracker(**settings: object) -> ChainTracker:
    directory = UpstreamDirectory([UpstreamInfo("shop", (8081,), "demo")])
    chains = ChainTracker(directory, ChainSettings(**settings))  # type: ignore[arg-type]
    chains.observe(ChildState(child="demo", state="running", pid=SERVER, time=T0), T0)
    return chains


def lineage(*pids: int) -> list[ev.Ancestor]:
    names = {SERVER: "python3", 1: "sentinel-stack"}
    return [ev.Ancestor(pid=p, comm=names.get(p, "sh")) for p in (*pids, 1)]


def execve(pid: int, exe: str, t: float, *parents: int) -> ev.ExecEvent:
    return ev.ExecEvent(
        time=t,
        pid=pid,
        ppid=parents[0],
        comm=exe.rsplit("/", 1)[-1],
        exe=exe,
        filename=exe,
        argv=[exe],
        lineage=lineage(*parents),
    )


def shadow_read(pid: int, t: float, *parents: int) -> ev.OpenEvent:
    return ev.OpenEvent(
        time=t,
        pid=pid,
        ppid=parents[0],
        comm="cat",
        path="/etc/shadow",
        reasons=["sensitive"],
        result=3,
        lineage=lineage(*parents),
    )


def access(
    t: float, request_id: str = "r1", client: str = "203.0.113.9", **extra: object
) -> AccessRecord:
    return AccessRecord(
        time=t,
        source="proxy",
        request_id=request_id,
        method="POST",
        path="/upload.php",
        status=200,
        latency_ms=40.0,
        upstream="shop",
        client_ip=client,
        **extra,  # type: ignore[arg-type]
    )


def rule_alert(
    pid: int, t: float, rule: str, technique: str, severity: str = "high", parent: int = SERVER
) -> Alert:
    return Alert(
        time=t,
        rule=rule,
        severity=severity,  # type: ignore[arg-type]
        summary=f"{rule} fired",
        technique=technique,
        process=ProcessInfo(pid=pid, comm="sh", lineage=[{"pid": parent, "comm": "python3"}]),
    )


def test_web_shell_story_escalates_to_critical_with_ordered_techniques() -> None:
    chains = tracker()
    # The server spawns a shell while answering; the access record comes when it is done.
    assert chains.observe(execve(130, "/bin/sh", T0 + 0.01, SERVER), T0 + 0.02) == []
    chains.on_alert(rule_alert(130, T0 + 0.01, "web_server_spawned_shell", "T1059.004"), T0)
    first = chains.observe(access(T0, tags=["waf:rce"], rule_ids=["932100"]), T0 + 0.1)
    assert len(first) == 1
    alert = first[0]
    assert alert.rule == "threat_chain"
    assert alert.severity == "high"  # web exploit + execution
    assert alert.client_ip == "203.0.113.9" and alert.request_id == "r1"
    assert [s.technique for s in alert.chain] == ["T1190", "T1059.004"]
    assert "waf:rce" in alert.chain[0].summary and "932100" in alert.chain[0].summary
    assert alert.fields["findings"] == "waf:rce,932100"
    # The shell runs cat, which reads /etc/shadow, well after the response ended.
    chains.observe(ev.ForkEvent(time=T0 + 30, pid=131, ppid=130, lineage=lineage(130, SERVER)), T0)
    chains.observe(execve(131, "/usr/bin/cat", T0 + 30.001, 130, SERVER), T0 + 30)
    later = chains.observe(shadow_read(131, T0 + 30.002, 130, SERVER), T0 + 30)
    assert len(later) == 1
    update = later[0]
    assert update.chain_id == alert.chain_id and update.id != alert.id
    assert update.severity == "critical"
    assert update.fields["techniques"] == "T1190 → T1059.004 → T1059 → T1003.008"
    assert update.chain[0].kind == "access"
    assert [s.time for s in update.chain] == sorted(s.time for s in update.chain)
    assert update.fields["process_tree"] == "python3[100] > sh[130] > cat[131]"
    assert update.process is not None and update.process.pid == 131
    assert [a["pid"] for a in update.process.lineage] == [130, SERVER]
    assert update.tactic == "credential-access"
    assert "attack.T1003.008" in update.tags
    # The wire shape every consumer decodes.
    assert ALERT_DECODER.decode(ALERT_ENCODER.encode(update)) == update


def test_a_rule_alert_refines_the_kernel_step_it_is_about() -> None:
    chains = tracker()
    chains.observe(execve(130, "/usr/bin/python3", T0 + 0.01, SERVER), T0)
    chains.on_alert(rule_alert(130, T0 + 0.01, "reverse_shell_socket_stdio", "T1059.004"), T0)
    chain = next(iter(chains.chains.values()))
    assert len(chain.steps) == 1
    assert chain.steps[0].technique == "T1059.004"
    assert chain.steps[0].summary.startswith("reverse_shell_socket_stdio")
    # The same alert seen twice (the pipeline, then again) is one step.
    again = rule_alert(130, T0 + 0.01, "x", "T1059")
    again.id = chain.steps[0].alert_id or ""
    chains.on_alert(again, T0)
    assert len(chain.steps) == 1


def test_an_alert_before_its_kernel_event_is_not_counted_twice() -> None:
    chains = tracker()
    chains.on_alert(rule_alert(130, T0 + 0.01, "web_server_spawned_shell", "T1059.004"), T0)
    chains.observe(execve(130, "/bin/sh", T0 + 0.01, SERVER), T0)
    chain = next(iter(chains.chains.values()))
    assert [s.technique for s in chain.steps] == ["T1059.004"]


def test_server_acts_link_to_the_request_that_covers_them_and_never_adopt_the_server() -> None:
    chains = tracker()
    traversal = ev.OpenEvent(
        time=T0 + 0.02,
        pid=SERVER,
        comm="python3",
        path="/srv/../etc/passwd",
        reasons=["traversal"],
        lineage=lineage(),
    )
    assert chains.observe(traversal, T0 + 0.03) == []  # one step: not a chain yet
    [alert] = chains.observe(access(T0, "r1", "198.51.100.1"), T0 + 0.1)
    assert [s.technique for s in alert.chain] == ["T1190", "T1083"]
    assert alert.severity == "medium"
    # A minute later, another client's request makes the same server read /etc/shadow.
    read = shadow_read(SERVER, T0 + 60.01, 1)
    read.lineage = lineage()
    chains.observe(read, T0 + 60.02)
    [second] = chains.observe(access(T0 + 60, "r2", "198.51.100.2"), T0 + 60.1)
    assert second.chain_id != alert.chain_id
    assert second.client_ip == "198.51.100.2"
    assert second.severity == "high"  # initial access + credential access
    assert len(chains.chains) == 2
    assert SERVER not in chains._by_pid


def test_a_request_with_findings_wins_over_a_concurrent_clean_one() -> None:
    chains = tracker()
    chains.observe(access(T0, "clean", "192.0.2.1"), T0 + 0.04)
    [clean] = chains.observe(execve(130, "/bin/sh", T0 + 0.01, SERVER), T0 + 0.05)
    assert clean.request_id == "clean"
    [bad] = chains.observe(access(T0, "bad", "192.0.2.66", tags=["waf:cmdi"]), T0 + 0.06)
    assert bad.request_id == "bad" and bad.client_ip == "192.0.2.66"
    assert bad.chain_id == clean.chain_id
    assert [s.kind for s in bad.chain].count("access") == 1


def test_accepting_on_the_upstream_port_makes_a_process_a_server_until_it_exits() -> None:
    chains = ChainTracker(UpstreamDirectory([UpstreamInfo("api", (9000,))]))
    worker = 300
    accept = ev.AcceptEvent(
        time=T0,
        pid=worker,
        comm="gunicorn",
        local=ev.Endpoint("127.0.0.1", 9000),
        remote=ev.Endpoint("127.0.0.1", 40000),
    )
    chains.observe(accept, T0)
    shell = execve(301, "/bin/bash", T0 + 0.01, worker)
    chains.observe(shell, T0)
    assert len(chains.chains) == 1
    chains.observe(ev.ExitEvent(time=T0 + 1, pid=worker), T0 + 1)
    other = execve(401, "/bin/bash", T0 + 2, worker)  # pid 300 reused by someone else
    other.lineage = [ev.Ancestor(pid=worker, comm="bash")]
    chains.observe(other, T0 + 2)
    assert len(chains.chains) == 1


def test_a_stack_view_is_the_process_table_when_the_service_keeps_one() -> None:
    view = StackView(pids={SERVER: "demo"}, upstreams=frozenset({"demo"}))
    chains = ChainTracker(UpstreamDirectory([UpstreamInfo("shop", (), "demo")], view))
    chains.observe(execve(130, "/bin/sh", T0, SERVER), T0)
    assert len(chains.chains) == 1


def test_processes_outside_the_upstreams_are_ignored() -> None:
    chains = tracker()
    chains.observe(execve(500, "/bin/sh", T0, 499), T0)
    chains.observe(shadow_read(501, T0, 499), T0)
    chains.on_alert(rule_alert(501, T0, "sensitive_file_read", "T1552.001", parent=499), T0)
    assert not chains.chains


def test_agent_findings_on_the_hub_join_the_request_chain() -> None:
    chains = tracker()
    chains.observe(execve(130, "/bin/sh", T0 + 0.01, SERVER), T0)
    chains.observe(access(T0, "r9"), T0 + 0.1)
    finding = HubAlert(
        time=T0 + 0.005, source="waf", rule="942100", summary="SQLi", request_id="r9"
    )
    assert chains.observe(finding, T0 + 0.2) == []  # no new technique: no new report
    chain = next(iter(chains.chains.values()))
    assert any("942100" in s.summary for s in chain.steps)
    # The detector's own alerts echoed by the hub are not steps (on_alert had them).
    echo = HubAlert(time=T0, source="detector", rule="x", request_id="r9")
    steps = len(chain.steps)
    chains.observe(echo, T0 + 0.3)
    assert len(chain.steps) == steps


def test_chains_close_when_idle_with_a_last_update_if_they_grew_quietly() -> None:
    chains = tracker(idle=60.0)
    chains.observe(execve(130, "/bin/sh", T0 + 0.01, SERVER), T0)
    [first] = chains.observe(access(T0, tags=["waf:rce"]), T0 + 0.1)
    # Same technique again: no new alert, but the chain is now ahead of what was reported.
    assert chains.observe(execve(132, "/bin/sh", T0 + 1, 130, SERVER), T0 + 1) == []
    assert chains.tick(T0 + 30) == []
    [last] = chains.tick(T0 + 62)
    assert last.chain_id == first.chain_id and len(last.chain) == 3
    assert not chains.chains and not chains._by_pid and not chains._by_client


def test_memory_is_bounded_per_client_and_overall() -> None:
    chains = tracker(max_chains=5, max_per_client=2, max_steps=3)
    for n in range(4):  # one client, four chains: only the newest two remain
        t = T0 + n * 100
        chains.observe(execve(1000 + n, "/bin/sh", t + 0.01, SERVER), t)
        chains.observe(access(t, f"r{n}", "192.0.2.7"), t + 0.1)
    assert len(chains._by_client["192.0.2.7"]) == 2
    for n in range(10):  # unlinked chains from nowhere: capped at max_chains
        t = T0 + 1000 + n * 100
        chains.observe(execve(2000 + n, "/bin/sh", t, SERVER), t)
    assert len(chains.chains) == 5
    assert chains.evicted >= 9
    assert set(chains._by_pid.values()) <= set(chains.chains)
    chain = next(reversed(chains.chains.values()))
    for k in range(5):
        chains.observe(shadow_read(chain.server_pid + 0, T0 + 5000 + k, 1), T0 + 5000)
    pid = next(iter(chain.tree.keys() - {SERVER}))
    for k in range(5):
        chains.observe(shadow_read(pid, chain.anchor + 0.1 + k, SERVER), chain.anchor)
    assert len(chain.steps) == 3 and chain.dropped_steps == 3


def test_severity_escalates_with_phases_and_never_below_a_step_alert() -> None:
    assert chain_severity([], []) == "medium"
    assert chain_severity(["T1190", "T1059.004"], []) == "high"
    assert chain_severity(["T1059.004", "T1095"], []) == "high"
    assert chain_severity(["T1190", "T1059.004", "T1552.001"], []) == "critical"
    assert chain_severity(["T1083"], ["critical"]) == "critical"


def test_routine_server_activity_is_not_a_step() -> None:
    connect = ev.ConnectEvent(time=T0, pid=SERVER, remote=ev.Endpoint("10.0.0.5", 5432))
    assert describe_event(connect, descendant=False) is None
    assert describe_event(connect, descendant=True) is not None
    assert describe_event(ev.ForkEvent(time=T0, pid=5), descendant=True) is None
    chmod = ev.ChmodEvent(time=T0, pid=SERVER, path="/tmp/x", mode=0o4755)
    assert describe_event(chmod, descendant=False) == (
        "?[100] chmod 0o4755 /tmp/x",
        "T1548.001",
    )


def test_the_plugin_hook_builds_a_tracker_from_the_config() -> None:
    loaded = load_config_text(
        """
[processes.demo]
command = "python3 -m http.server 8081"
[upstreams.shop]
targets = ["127.0.0.1:8081"]
process = "demo"
""",
        "<test>",
    )
    components = detector_components(PipelineContext(config=loaded.config))
    [analyzer] = components.analyzers
    assert isinstance(analyzer, ChainTracker)
    analyzer.observe(ChildState(child="demo", state="running", pid=SERVER, time=T0), T0)
    analyzer.observe(execve(130, "/bin/sh", T0, SERVER), T0)
    assert analyzer.chains
    assert msgspec.json.decode(ALERT_ENCODER.encode(analyzer.chains.popitem()[1].to_alert(T0)))


def test_with_the_rules_engine_a_web_shell_becomes_one_escalating_chain(tmp_path: Path) -> None:
    """The detector as it runs: default rules first, then the plug-ins (chains among them)."""
    from sentinel_stack.detect.events import decode_event
    from sentinel_stack.detect.service import Detector, DetectorSettings

    config = tmp_path / "stack.toml"
    config.write_text(
        '[processes.demo]\ncommand = "python3 -m http.server 8081"\n'
        '[upstreams.shop]\ntargets = ["127.0.0.1:8081"]\nprocess = "demo"\n'
        "[detector]\nbaseline_window = 0\n"
    )
    settings = DetectorSettings(
        rules_dir=REPO / "configs" / "rules", run_dir=tmp_path, config_path=config
    )
    status = {"children": [{"name": "demo", "pid": SERVER, "state": "running"}]}
    detector = Detector(settings, status)
    events = [
        execve(130, "/bin/sh", T0 + 0.01, SERVER),
        access(T0, tags=["waf:rce"]),
        shadow_read(131, T0 + 5, 130, SERVER),
    ]
    raised = [
        alert
        for event in events
        for alert in detector.pipeline.process(decode_event(msgspec.json.encode(event)), T0 + 6)
    ]
    rules = [a.rule for a in raised]
    assert "web_server_spawned_shell" in rules and "sensitive_file_read" in rules
    chains = [a for a in raised if a.rule == "threat_chain"]
    assert len(chains) == 2  # reported, then escalated; the rule's relabel is no third
    assert len({a.chain_id for a in chains}) == 1
    last = chains[-1]
    assert last.severity == "critical" and last.client_ip == "203.0.113.9"
    assert [s.technique for s in last.chain][:2] == ["T1190", "T1059.004"]
    assert any(s.summary.startswith("web_server_spawned_shell") for s in last.chain)
