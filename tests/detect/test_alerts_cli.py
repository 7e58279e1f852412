"""`sentinel-stack alerts` against a real control server and event hub, and the alert file;
`sentinel-stack baseline show|reset|learn`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from sentinel_stack.cli.alert_commands import render_alert
from sentinel_stack.cli.main import main
from sentinel_stack.control.server import ControlServer, LauncherInfo
from sentinel_stack.detect.alert import ALERT_ENCODER, Alert, ChainStep
from sentinel_stack.events.hub import EventHub
from sentinel_stack.probe import events as ev
from sentinel_stack.supervisor.containment import Containment
from sentinel_stack.supervisor.events import EventBus
from sentinel_stack.supervisor.runner import RuntimeContext
from sentinel_stack.supervisor.spec import StackPlan
from sentinel_stack.supervisor.stack import Supervisor


def line(rule: str, severity: str = "high", **extra: object) -> bytes:
    alert = Alert(time=1.0, rule=rule, severity=severity, summary=f"{rule} fired", **extra)  # type: ignore[arg-type]
    return ALERT_ENCODER.encode(alert)


class Launcher:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.hub = EventHub(run_dir / "events.sock")
        bus = EventBus()
        plan = StackPlan(name="t", run_dir=run_dir, children=())
        supervisor = Supervisor(
            plan, RuntimeContext(run_dir, bus, Containment("t", use_cgroup=False))
        )

        async def reload() -> list[str]:
            return []

        info = LauncherInfo("t", run_dir, "<test>", "none", 0.0, lambda: None, reload)
        self.control = ControlServer(run_dir / "control.sock", supervisor, self.hub, bus, info)


@pytest.fixture
async def launcher(short_dir: Path) -> AsyncIterator[Launcher]:
    stack = Launcher(short_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(stack.hub.serve)
        await nursery.start(stack.control.serve)
        yield stack
        nursery.cancel_scope.cancel()


async def run_cli(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


async def test_alerts_lists_the_hubs_recent_alerts(
    launcher: Launcher, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel = ev.ExecEvent(time=1.0, pid=5, comm="sh")
    launcher.hub.ingest(ev.EVENT_ENCODER.encode(kernel))
    for n, severity in enumerate(["low", "critical", "medium", "high"]):
        launcher.hub.ingest(line(f"rule{n}", severity))
    run = str(launcher.run_dir)
    assert await run_cli("alerts", "--run-dir", run, "--json") == 0
    rules = [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()]
    assert rules == ["rule0", "rule1", "rule2", "rule3"]  # oldest first; no kernel event
    assert await run_cli("alerts", "--run-dir", run, "--json", "--severity", "high", "-n", "1") == 0
    rules = [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()]
    assert rules == ["rule3"]  # high and above, the newest one


async def test_alerts_follow_streams_new_alerts(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher = Launcher(short_dir)
    printed = ""
    codes: list[int] = []

    async def follow() -> None:
        codes.append(await run_cli("alerts", "--run-dir", str(short_dir), "--json", "-f"))

    async with trio.open_nursery() as outer, trio.open_nursery() as servers:
        await servers.start(launcher.hub.serve)
        await servers.start(launcher.control.serve)
        launcher.hub.ingest(line("before"))
        outer.start_soon(follow)
        with trio.fail_after(10):
            while not launcher.hub._subscribers:  # the CLI has listed and subscribed
                await trio.sleep(0.01)
        launcher.hub.ingest(line("during", "low"))
        launcher.hub.ingest(ev.EVENT_ENCODER.encode(ev.ExecEvent(time=1.0, pid=5)))
        launcher.hub.ingest(line("after", "critical"))
        with trio.fail_after(10):
            while '"after"' not in printed:
                await trio.sleep(0.01)
                printed += capsys.readouterr().out
        # The launcher going away ends the stream, and the CLI with it.
        servers.cancel_scope.cancel()
    assert codes == [0]
    rules = [json.loads(x)["rule"] for x in printed.splitlines()]
    assert rules == ["before", "during", "after"]


async def test_without_a_stack_alerts_reads_the_rotated_alert_files(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = short_dir / "detector"
    folder.mkdir()
    (folder / "alerts.jsonl.2").write_bytes(line("oldest") + b"\n")
    (folder / "alerts.jsonl.1").write_bytes(line("older", "low") + b"\n{cut")
    (folder / "alerts.jsonl").write_bytes(line("newest", "critical") + b"\n")
    state = ["--run-dir", str(short_dir), "--state-dir", str(folder)]
    assert await run_cli("alerts", *state, "--json") == 0
    rules = [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()]
    assert rules == ["oldest", "older", "newest"]
    assert await run_cli("alerts", *state, "--severity", "critical") == 0
    out = capsys.readouterr().out
    assert "CRITICAL" in out and "newest fired" in out and "oldest" not in out
    empty = short_dir / "empty"
    empty.mkdir()
    assert await run_cli("alerts", "--run-dir", str(empty), "--state-dir", str(empty)) == 1


async def test_alert_file_and_baseline_default_to_a_state_dir_that_outlives_the_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The embedded config: $XDG_STATE_HOME/sentinel-stack/<stack>/state/detector, not the run dir
    # (a tmpfs). `up` hands the same directory to the detector (launcher.py).
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SENTINEL_STACK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "state" / "sentinel-stack" / "default" / "state" / "detector"
    folder.mkdir(parents=True)
    (folder / "alerts.jsonl").write_bytes(line("kept") + b"\n")
    empty_run_dir = tmp_path / "run"
    empty_run_dir.mkdir()
    assert await run_cli("alerts", "--run-dir", str(empty_run_dir), "--json") == 0
    assert [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()] == ["kept"]
    # A detector that `up` did not start (an exported service) keeps <run-dir>/detector.
    service_run_dir = tmp_path / "service-run"
    (service_run_dir / "detector").mkdir(parents=True)
    (service_run_dir / "detector" / "alerts.jsonl").write_bytes(line("service") + b"\n")
    assert await run_cli("alerts", "--run-dir", str(service_run_dir), "--json") == 0
    assert [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()] == ["service"]


def test_render_alert_shows_chains_and_neutralises_control_characters() -> None:
    alert = Alert(
        time=1.0,
        rule="threat_chain",
        severity="critical",
        summary="evil \x1b[2J path",
        client_ip="203.0.113.9",
        chain_id="c" * 32,
        count=3,
        chain=[ChainStep(time=1.0, kind="access", summary="POST /x", technique="T1190")],
    )
    text = render_alert(json.loads(ALERT_ENCODER.encode(alert)))
    assert "\x1b" not in text and "(×3)" in text
    assert "client 203.0.113.9" in text and "1. POST /x  [T1190]" in text


async def test_baseline_learn_show_and_reset(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = short_dir / "rec.jsonl"
    spawn = ev.ExecEvent(
        time=1.0,
        pid=2,
        comm="git",
        exe="/usr/bin/git",
        lineage=[ev.Ancestor(pid=1, comm="python3", exe="/usr/bin/python3")],
    )
    recording.write_bytes(ev.EVENT_ENCODER.encode(spawn) + b"\n")
    run = ["--run-dir", str(short_dir), "--state-dir", str(short_dir / "detector")]
    assert await run_cli("baseline", "show", *run) == 1  # nothing learnt yet
    assert await run_cli("baseline", "learn", str(recording), *run) == 0
    path = short_dir / "detector" / "baseline.json"
    assert path.exists()
    capsys.readouterr()
    assert await run_cli("baseline", "show", *run) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "/usr/bin/python3" in out and "children (1): /usr/bin/git" in out
    assert await run_cli("baseline", "show", "--json", *run) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["executables"]["/usr/bin/python3"]["children"] == ["/usr/bin/git"]
    assert await run_cli("baseline", "reset", *run) == 0
    assert not path.exists()
