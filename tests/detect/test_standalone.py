"""The detector without a launcher: it serves the event hub, learns the children it can, and
says what it cannot do. The core without sockets first, then in-process over real sockets."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import trio

from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.service import Detector, DetectorSettings, HubSink, LogSink
from sentinel_stack.detect.sinks import JsonLinesSink
from sentinel_stack.detect.standalone import run_detector_auto, run_standalone
from sentinel_stack.events.hub import HubStats
from sentinel_stack.probe import events as ev
from tests.agents.agent_programs import wait_until
from tests.detect.detectkit import RULES_DIR, T0, exec_, open_

CONFIG = """
[stack]
name = "t"

[processes.web]
command = ["/usr/bin/python3", "-m", "http.server", "8081"]

[upstreams.web]
targets = ["127.0.0.1:8081"]
process = "web"

[detector]
rules_dir = "rules"
"""
OUTSIDE = [ev.Ancestor(1, "systemd")]  # no launcher, no web-server-looking parent


def hub_line(event: object) -> bytes:
    """A producer's line: the event itself (no control-API envelope)."""
    return ev.EVENT_ENCODER.encode(event)


def shadow_read() -> ev.OpenEvent:
    return open_("/etc/shadow", reasons=("sensitive",), comm="cat", lineage=OUTSIDE)


@pytest.fixture
def standalone(tmp_path: Path) -> Detector:
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    (tmp_path / "stack.toml").write_text(CONFIG)
    settings = DetectorSettings(rules_dir=tmp_path / "rules", config_path=tmp_path / "stack.toml")
    return Detector(settings, None, environ={}, standalone=True)


# ---- the core ----------------------------------------------------------------------------------


def test_hub_lines_become_alerts_that_go_to_the_log_not_to_a_hub(standalone: Detector) -> None:
    assert [a.rule for a in standalone.handle_hub_line(hub_line(shadow_read()), T0)] == [
        "sensitive_file_read"
    ]
    kinds = [type(sink) for sink in standalone.pipeline.sinks]
    assert LogSink in kinds and HubSink not in kinds  # it *is* the hub
    assert standalone.handle_hub_line(b'{"id":1,"event":{}}', T0) == []  # not a hub line
    assert standalone.skipped == 1


def test_a_launcher_detector_still_writes_to_the_hub(tmp_path: Path) -> None:
    settings = DetectorSettings(rules_dir=RULES_DIR, events_socket=tmp_path / "events.sock")
    kinds = [type(sink) for sink in Detector(settings, None, environ={}).pipeline.sinks]
    assert HubSink in kinds and LogSink not in kinds


def test_crash_loop_is_named_inactive_without_a_supervisor(standalone: Detector) -> None:
    assert standalone.supervisor_only_rules() == ["crash_loop"]
    assert "inactive" not in standalone.status_text()  # not serving yet
    standalone.served = HubStats(received=3)
    text = standalone.status_text()
    assert "standalone hub: 3 lines" in text and "inactive (no supervisor): crash_loop" in text


def test_an_upstream_is_learnt_from_the_exec_of_its_configured_command(
    standalone: Detector,
) -> None:
    server = exec_(["python3", "-m", "http.server", "8081"], pid=700, lineage=OUTSIDE)
    standalone.handle_hub_line(hub_line(server), T0)
    assert standalone.view.pids == {700: "web"}
    assert (
        standalone.view.stack_child(
            exec_(["/bin/id"], pid=702, lineage=[ev.Ancestor(700, "python3")])
        )
        == "web"
    )
    shell = exec_(
        ["/bin/sh", "-c", "id"], comm="sh", pid=701, lineage=[ev.Ancestor(700, "python3")]
    )
    assert "web_server_spawned_shell" in [
        a.rule for a in standalone.handle_hub_line(hub_line(shell), T0)
    ]
    gone = ev.ExitEvent(time=T0, pid=700, comm="python3")
    standalone.handle_hub_line(hub_line(gone), T0)
    assert standalone.view.pids == {}  # a reused pid is not the upstream


def test_every_instance_of_a_child_is_recognised(standalone: Detector) -> None:
    for pid in (800, 801):  # two replicas on one node
        server = exec_(["/usr/bin/python3", "-m", "http.server", "8081"], pid=pid, lineage=[])
        standalone.handle_hub_line(hub_line(server), T0)
    assert standalone.view.pids == {800: "web", 801: "web"}


def test_an_exec_of_another_command_teaches_nothing(standalone: Detector) -> None:
    standalone.handle_hub_line(hub_line(exec_(["python3", "-m", "http.server"], pid=9)), T0)
    assert standalone.view.pids == {}


def test_builtin_children_are_learnt_by_module() -> None:
    view = StackView(
        stack_name="t", kinds={"proxy": "proxy"}, modules={"sentinel_stack.proxy": "proxy"}
    )
    assert view.learn_exec(["/opt/s/bin/python", "-m", "sentinel_stack.proxy", "-x"], 5) == "proxy"
    assert view.pids == {5: "proxy"}
    assert view.learn_exec(None, 6) is None and view.learn_exec(["python"], 6) is None


def test_systemd_unit_cgroups_name_the_child() -> None:
    view = StackView(stack_name="my-stack", kinds={"web": "process", "proxy": "proxy"})
    event = open_("/x", lineage=OUTSIDE)
    event.cgroup_path = (
        "/sentinel.slice/sentinel-my.slice/sentinel-my-stack.slice/sentinel-my-stack-web.service"
    )
    assert view.stack_child(event) == "web"
    other = open_("/x", lineage=OUTSIDE)
    other.cgroup_path = "/system.slice/sentinel-my-stack-cron.service"  # not a child
    assert view.stack_child(other) is None
    unrelated = open_("/x", lineage=OUTSIDE)
    unrelated.cgroup_path = "/system.slice/ssh.service"
    assert view.stack_child(unrelated) is None


def test_alert_file_flag_replaces_the_configured_file(tmp_path: Path) -> None:
    (tmp_path / "stack.toml").write_text(CONFIG)
    settings = DetectorSettings(
        rules_dir=RULES_DIR,
        config_path=tmp_path / "stack.toml",
        run_dir=tmp_path / "run",
        alert_file=tmp_path / "mine.jsonl",
    )
    detector = Detector(settings, None, environ={}, standalone=True)
    files = [s.path for s in detector.pipeline.sinks if isinstance(s, JsonLinesSink)]
    assert files == [tmp_path / "mine.jsonl"]  # not also <run-dir>/detector/alerts.jsonl


# ---- over real sockets, in process ---------------------------------------------------------


async def _write(path: Path, *lines: bytes) -> None:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(b"".join(line + b"\n" for line in lines))


def _alerts(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_serves_the_hub_and_writes_alerts_to_the_file(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub, alerts = short_dir / "events.sock", short_dir / "alerts.jsonl"
    settings = DetectorSettings(rules_dir=RULES_DIR, serve_events=hub, alert_file=alerts)
    async with trio.open_nursery() as nursery:
        detector = await nursery.start(run_standalone, settings)
        assert hub.stat().st_mode & 0o777 == 0o600
        await _write(hub, b"not json", hub_line(shadow_read()))
        await wait_until(lambda: bool(_alerts(alerts)), timeout=10)
        assert [a["rule"] for a in _alerts(alerts)] == ["sensitive_file_read"]
        assert detector.served is not None and detector.served.malformed == 1
        nursery.cancel_scope.cancel()
    assert not hub.exists()  # the hub it bound, it removes
    said = [r.getMessage() for r in caplog.records if "cannot fire" in r.getMessage()]
    assert len(said) == 1 and "crash_loop" in said[0]  # once
    assert any("ALERT sensitive_file_read" in r.getMessage() for r in caplog.records)


async def test_serves_an_inherited_listener_and_leaves_its_file(short_dir: Path) -> None:
    path, alerts = short_dir / "activated.sock", short_dir / "alerts.jsonl"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    settings = DetectorSettings(rules_dir=RULES_DIR, alert_file=alerts)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_standalone, settings, listener)
        await _write(path, hub_line(shadow_read()))
        await wait_until(lambda: bool(_alerts(alerts)), timeout=10)
        nursery.cancel_scope.cancel()
    assert path.exists()  # systemd's socket unit owns it (RemoveOnStop=)


async def test_no_launcher_means_serving_at_the_events_socket(short_dir: Path) -> None:
    hub = short_dir / "events.sock"
    settings = DetectorSettings(
        rules_dir=RULES_DIR, control_socket=short_dir / "control.sock", events_socket=hub
    )
    async with trio.open_nursery() as nursery:
        detector = await nursery.start(run_detector_auto, settings)
        assert detector.standalone and hub.exists()
        nursery.cancel_scope.cancel()


async def test_a_live_hub_at_the_path_is_never_taken_over(short_dir: Path) -> None:
    hub = short_dir / "events.sock"
    other = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await other.bind(str(hub))
    other.listen(4)
    settings = DetectorSettings(rules_dir=RULES_DIR, events_socket=hub)
    with other, pytest.raises(ValueError, match="something already serves"):
        await run_detector_auto(settings)


async def test_without_launcher_or_hub_path_it_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match="--serve-events PATH"):
        await run_detector_auto(DetectorSettings(rules_dir=RULES_DIR))
