"""Remediation: the shipped policy's decisions, and actions taken over real Unix sockets."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from sentinel_agents.denylist.control import ControlRequest, serve_control

from sentinel_stack.config.loader import load_config_text
from sentinel_stack.detect.alert import Alert, ProcessInfo
from sentinel_stack.detect.pipeline import PipelineContext
from sentinel_stack.detect.remediation import (
    RemediationSettings,
    Remediator,
    detector_components,
    owner_child,
)
from sentinel_stack.detect.remediation_policy import RemediationPolicy, build_input, parse_actions

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "configs" / "policies" / "remediation.rego"


def chain_alert(ip: str = "203.0.113.9", severity: str = "critical") -> Alert:
    return Alert(
        time=1.0,
        rule="threat_chain",
        severity=severity,  # type: ignore[arg-type]
        summary="threat chain: T1190 → T1059.004 → T1003.008",
        client_ip=ip,
        chain_id="c1",
    )


def shell_alert(pid: int) -> Alert:
    return Alert(
        time=1.0,
        rule="reverse_shell_dev_tcp",
        severity="critical",
        summary="bash opened /dev/tcp/127.0.0.1/4444",
        process=ProcessInfo(pid=pid, comm="sleep"),
    )


# ---- the decision ----------------------------------------------------------------------------


def test_the_shipped_policy_is_conservative() -> None:
    policy = RemediationPolicy(POLICY)

    def decide(alert: Alert, child: str | None = None) -> list[tuple[str, object]]:
        actions, problems = policy.decide(build_input(alert, child, "test", 1.0))
        assert problems == []
        return [(a.type, a.ip or a.pid) for a in actions]

    assert decide(chain_alert()) == [("deny_client", "203.0.113.9")]
    assert policy.decide(build_input(chain_alert(), None, "t", 1.0))[0][0].ttl == 900.0
    assert decide(chain_alert(severity="high")) == []
    assert decide(chain_alert("127.0.0.1")) == []
    assert decide(chain_alert("192.168.1.4")) == []
    assert decide(chain_alert("::ffff:10.0.0.1")) == []
    assert decide(shell_alert(4242), child="demo") == [("kill", 4242)]
    assert decide(shell_alert(4242)) == []  # not a process of the stack


def test_actions_of_the_wrong_shape_are_refused_and_ttls_clamped() -> None:
    actions, problems = parse_actions(
        [
            {"type": "deny_client", "ip": "198.51.100.1", "ttl": "30d"},
            {"type": "deny_client", "ip": "not-an-ip"},
            {"type": "kill", "pid": 1},
            {"type": "stop"},
            {"type": "reboot"},
            {"type": "deny_client", "ip": "198.51.100.2", "ttl": "soon"},
        ],
        default_ttl=900.0,
        max_ttl=3600.0,
    )
    assert [(a.type, a.ttl) for a in actions] == [("deny_client", 3600.0)]
    assert len(problems) == 5
    assert parse_actions({"type": "kill"}, 1.0, 1.0)[1]  # not a set


def test_owner_child_walks_up_the_process_tree() -> None:
    parents = {50: 40, 40: 30, 30: 1, 70: 1}
    children = {30: "demo"}
    assert owner_child(50, children, parents.get) == "demo"
    assert owner_child(30, children, parents.get) == "demo"
    assert owner_child(70, children, parents.get) is None
    assert owner_child(5, {5: "x"}, {5: 5}.get) == "x"


# ---- actions over sockets ---------------------------------------------------------------------


@dataclass
class Stack:
    """A fake launcher (control API), the real denylist control server, and a hub."""

    root: Path
    children: dict[int, str] = field(default_factory=dict)
    control_requests: list[dict[str, Any]] = field(default_factory=list)
    denied: list[ControlRequest] = field(default_factory=list)
    hub_lines: list[dict[str, Any]] = field(default_factory=list)

    async def control(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while not data.endswith(b"\n"):
                data += await stream.receive_some(65536)
            request = json.loads(data)
            self.control_requests.append(request)
            if request["op"] == "status":
                rows = [{"name": n, "pid": p} for p, n in self.children.items()]
                result: Any = {"children": rows}
            else:
                result = {"child": request["name"], "state": "stopped"}
            reply = {"id": request["id"], "ok": True, "result": result}
            await stream.send_all(json.dumps(reply).encode() + b"\n")

    async def deny(self, request: ControlRequest) -> Any:
        self.denied.append(request)
        return {"entry": {"kind": "ip", "value": request.value}, "saved": True}

    async def hub(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
            self.hub_lines += [json.loads(line) for line in data.splitlines()]

    def settings(self, **extra: Any) -> RemediationSettings:
        return RemediationSettings(
            control_socket=self.root / "control.sock",
            denylist_socket=self.root / "deny.ctl",
            events_socket=self.root / "events.sock",
            stack="test",
            **extra,
        )


async def _serve_unix(path: Path, handler: Any, task_status: Any) -> None:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen(8)
    await trio.serve_listeners(handler, [trio.SocketListener(sock)], task_status=task_status)


@pytest.fixture
async def stack(short_dir: Path, nursery: trio.Nursery) -> AsyncIterator[Stack]:
    fake = Stack(short_dir)
    await nursery.start(_serve_unix, short_dir / "control.sock", fake.control)
    await nursery.start(_serve_unix, short_dir / "events.sock", fake.hub)
    await nursery.start(serve_control, short_dir / "deny.ctl", fake.deny)
    yield fake


async def _hub_records(stack: Stack, count: int) -> list[dict[str, Any]]:
    with trio.fail_after(5):
        while len(stack.hub_lines) < count:
            await trio.sleep(0.005)
    return stack.hub_lines


async def test_a_critical_chain_denies_its_client_once_and_is_audited(stack: Stack) -> None:
    remediator = Remediator(RemediationPolicy(POLICY), stack.settings())
    [record] = await remediator.handle(chain_alert())
    assert (record.action, record.result, record.ttl) == ("deny_client", "done", 900.0)
    [request] = stack.denied
    assert (request.op, request.kind, request.value, request.ttl) == (
        "add",
        "ip",
        "203.0.113.9",
        900.0,
    )
    assert request.reason.startswith("remediation: critical threat chain c1")
    [audit] = await _hub_records(stack, 1)
    assert audit["kind"] == "remediation"
    assert audit["target"] == "ip 203.0.113.9" and audit["result"] == "done"
    assert audit["alert_id"] and audit["rule"] == "threat_chain"
    # The chain's next update: the same client is not denied twice within the TTL.
    [again] = await remediator.handle(chain_alert())
    assert again.result == "skipped" and len(stack.denied) == 1


async def test_kill_reaches_only_processes_below_a_stack_child(
    stack: Stack, tmp_path: Path
) -> None:
    # A careless policy that kills whatever an alert names: the guard still holds.
    careless = tmp_path / "kill.rego"
    careless.write_text(
        "package sentinel.remediation\nimport rego.v1\n"
        'actions contains {"type": "kill", "pid": input.alert.process.pid, "reason": "t"} '
        "if true\n"
    )
    victim = await trio.lowlevel.open_process(["sleep", "60"])
    try:
        remediator = Remediator(RemediationPolicy(careless), stack.settings())
        stack.children = {12345678: "demo"}  # the sleep does not descend from it
        [refused] = await remediator.handle(shell_alert(victim.pid))
        assert (refused.result, refused.detail) == (
            "refused",
            f"pid {victim.pid} is not a process of this stack",
        )
        stack.children = {victim.pid: "demo"}  # a child's own process: stop it instead
        [own] = await remediator.handle(shell_alert(victim.pid))
        assert own.result == "refused" and "stop the child" in own.detail
        assert victim.poll() is None
        # With the shipped policy: this test process plays the child "demo".
        stack.children = {os.getpid(): "demo"}
        remediator = Remediator(RemediationPolicy(POLICY), stack.settings())
        [record] = await remediator.handle(shell_alert(victim.pid))
        assert (record.action, record.result) == ("kill", "done")
        with trio.fail_after(5):
            assert await victim.wait() == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            await victim.wait()


async def test_stop_is_limited_to_children_and_never_the_detector(
    stack: Stack, tmp_path: Path
) -> None:
    policy_file = tmp_path / "stop.rego"
    policy_file.write_text(
        "package sentinel.remediation\nimport rego.v1\n"
        'actions contains {"type": "stop", "child": input.alert.fields.child, "reason": "t"} '
        "if true\n"
    )
    stack.children = {111: "demo", 222: "detector"}
    remediator = Remediator(RemediationPolicy(policy_file), stack.settings(own_pid=222))

    async def stop(child: str) -> str:
        alert = Alert(time=1.0, rule="r", severity="high", summary="s", fields={"child": child})
        [record] = await remediator.handle(alert)
        return record.result

    assert await stop("demo") == "done"
    assert await stop("nginx") == "refused"
    assert await stop("detector") == "refused"
    assert [r["op"] for r in stack.control_requests].count("stop") == 1


async def test_dry_run_decides_and_audits_but_does_nothing(stack: Stack) -> None:
    remediator = Remediator(RemediationPolicy(POLICY), stack.settings(dry_run=True))
    [record] = await remediator.handle(chain_alert())
    assert record.result == "dry-run" and not stack.denied
    assert (await _hub_records(stack, 1))[0]["result"] == "dry-run"


async def test_the_sink_queue_is_bounded(stack: Stack) -> None:
    remediator = Remediator(RemediationPolicy(POLICY), stack.settings(queue=2))
    for _ in range(5):
        remediator.submit(chain_alert())
    assert remediator.dropped == 3


def test_remediation_is_off_by_default_and_on_when_enabled(tmp_path: Path) -> None:
    off = load_config_text("[detector]\n", "<t>")
    assert detector_components(PipelineContext(config=off.config)).sinks == []
    on = load_config_text(f'[detector.remediation]\nenabled = true\npolicy = "{POLICY}"\n', "<t>")
    context = PipelineContext(config=on.config, run_dir=tmp_path)
    [sink] = detector_components(context).sinks
    assert isinstance(sink, Remediator)
    assert sink.settings.denylist_socket == tmp_path / "agents" / "denylist.ctl"
    missing = load_config_text(
        f'[detector.remediation]\nenabled = true\npolicy = "{tmp_path}/none.rego"\n', "<t>"
    )
    assert detector_components(PipelineContext(config=missing.config)).sinks == []
