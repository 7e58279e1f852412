"""The detector child under a real launcher: a kernel event in on events.sock, an alert out
on the hub (seen through the control API, as the TUI sees it), and SIGHUP reloads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel_stack.probe import events as ev
from tests.integration.stackkit import StackKit
from tests.integration.test_cli import Launcher, _no_leaked_launchers  # noqa: F401 (fixture)

RULES = Path(__file__).resolve().parents[2] / "configs" / "rules"


@pytest.fixture
def detector_stack(short_dir: Path) -> Iterator[tuple[Launcher, Path, int]]:
    kit = StackKit(short_dir)
    kit.child("web")
    rules = short_dir / "rules"
    shutil.copytree(RULES, rules)
    kit.tables.append(
        '[upstreams.web]\ntargets = ["127.0.0.1:1"]\nprocess = "web"\n\n'
        f'[detector]\nrules_dir = "{rules}"\nrate_limit = 100000\n'
    )
    config = short_dir / "stack.toml"
    config.write_text(kit.text("det"))
    launcher = Launcher(config, short_dir / "run")
    launcher.wait_for_output("all 2 children ready", timeout=30)
    status = json.loads(launcher.ctl("status", "--json").stdout)
    web = next(c for c in status["children"] if c["name"] == "web")
    yield launcher, rules, web["pid"]
    launcher.stop()


def shell_event(parent_pid: int, pid: int) -> bytes:
    """What the probe writes when the upstream `web` runs `sh -c id`."""
    event = ev.ExecEvent(
        time=time.time(),
        pid=pid,
        ppid=parent_pid,
        comm="sh",
        exe="/usr/bin/dash",
        filename="/bin/sh",
        argv=["/bin/sh", "-c", "id"],
        uid=1000,
        euid=1000,
        lineage=[ev.Ancestor(parent_pid, "python3", "/usr/bin/python3")],
    )
    return ev.EVENT_ENCODER.encode(event) + b"\n"


def alerts(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Subscribe now (not at the first `next`), then yield each alert on the hub."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(15)
    sock.connect(str(run_dir / "control.sock"))
    sock.sendall(b'{"op": "subscribe", "id": 1, "topics": ["events:alert"]}\n')

    def lines() -> Iterator[dict[str, Any]]:
        buffer = b""
        with sock:
            while True:
                while b"\n" not in buffer:
                    chunk = sock.recv(65536)
                    assert chunk, "the launcher closed the subscription"
                    buffer += chunk
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)["event"]

    time.sleep(0.3)  # the launcher registers the subscription
    return lines()


def next_alert(stream: Iterator[dict[str, Any]], rule: str) -> dict[str, Any]:
    """The next alert of `rule` (threat chains and other analyzers add their own)."""
    for alert in stream:
        if alert["rule"] == rule:
            return alert
    raise AssertionError("the stream ended")


def test_a_kernel_event_becomes_an_alert_on_the_hub(
    detector_stack: tuple[Launcher, Path, int],
) -> None:
    launcher, rules, web_pid = detector_stack
    stream = alerts(launcher.run_dir)
    with socket.socket(socket.AF_UNIX) as hub:
        hub.connect(str(launcher.run_dir / "events.sock"))
        latencies = []
        for pid in range(50_000, 50_005):
            sent = time.monotonic()
            hub.sendall(shell_event(web_pid, pid))
            alert = next_alert(stream, "web_server_spawned_shell")
            latencies.append(time.monotonic() - sent)
            assert alert["source"] == "detector" and alert["technique"] == "T1059.004"
            assert alert["process"]["pid"] == pid
            assert "upstream web" in alert["summary"]
    print(f"event -> alert on the hub: max {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 2.0
    # The alert file lives in the stack's state dir beside the config, not in the run dir
    # (a tmpfs in real use): alerts outlive a reboot.
    alert_file = rules.parent / ".sentinel-stack" / "state" / "det" / "detector" / "alerts.jsonl"
    deadline = time.monotonic() + 10
    while b"web_server_spawned_shell" not in (
        alert_file.read_bytes() if alert_file.exists() else b""
    ):
        assert time.monotonic() < deadline, f"no alert in {alert_file}"
        time.sleep(0.05)
    assert not (launcher.run_dir / "detector" / "alerts.jsonl").exists()


def test_sighup_with_a_broken_rule_keeps_the_last_good_rules(
    detector_stack: tuple[Launcher, Path, int],
) -> None:
    launcher, rules, web_pid = detector_stack
    stream = alerts(launcher.run_dir)
    (rules / "20-broken.toml").write_text(
        '[[rules]]\nid = "broken"\ncondition = "proc.nmae = x"\nseverity = "low"\noutput = "x"\n'
    )
    time.sleep(0.2)
    status = json.loads(launcher.ctl("status", "--json").stdout)
    detector = next(c for c in status["children"] if c["name"] == "detector")
    os.kill(detector["pid"], signal.SIGHUP)
    failed = next_alert(stream, "rules_reload_failed")
    assert "20-broken.toml:3:14" in failed["summary"] and "proc.nmae" in failed["summary"]
    with socket.socket(socket.AF_UNIX) as hub:
        hub.connect(str(launcher.run_dir / "events.sock"))
        hub.sendall(shell_event(web_pid, 60_000))
        assert next_alert(stream, "web_server_spawned_shell")["process"]["pid"] == 60_000
    detector_after = next(
        c
        for c in json.loads(launcher.ctl("status", "--json").stdout)["children"]
        if c["name"] == "detector"
    )
    assert detector_after["pid"] == detector["pid"] and detector_after["state"] == "running"
