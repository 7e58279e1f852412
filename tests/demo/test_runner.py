"""The runner's moving parts without a stack: the alert watcher against a fake launcher, the
scenario listeners, the sandbox, and the CLI's refusals."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import trio

from sentinel_stack.demo import attacks
from sentinel_stack.demo.alertwatch import MARKER_KIND, AlertWatcher
from sentinel_stack.demo.http import HttpConnection
from sentinel_stack.demo.report import SeenAlert, render_line
from sentinel_stack.demo.sandbox import SandboxError, sandbox
from sentinel_stack.demo.scenarios import SCENARIOS


class FakeLauncher:
    """control.sock answers `subscribe` by forwarding what is written to events.sock, like the
    launcher does; a hub line written before a subscriber exists is lost, like in the hub."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.subscribers: list[trio.SocketStream] = []
        self.requests: list[dict[str, object]] = []

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        control = trio.socket.socket(trio.socket.AF_UNIX)
        await control.bind(str(self.run_dir / "control.sock"))
        control.listen()
        events = trio.socket.socket(trio.socket.AF_UNIX)
        await events.bind(str(self.run_dir / "events.sock"))
        events.listen()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._control, [trio.SocketListener(control)])
            nursery.start_soon(trio.serve_listeners, self._events, [trio.SocketListener(events)])
            task_status.started()

    async def _control(self, stream: trio.SocketStream) -> None:
        line = await stream.receive_some(65536)
        self.requests.append(json.loads(line))
        self.subscribers.append(stream)
        await trio.sleep_forever()

    async def _events(self, stream: trio.SocketStream) -> None:
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        for line in data.splitlines():
            await self.publish(json.loads(line))

    async def publish(self, event: dict[str, object]) -> None:
        for subscriber in self.subscribers:
            await subscriber.send_all(json.dumps({"id": 1, "event": event}).encode() + b"\n")


async def test_watcher_is_live_when_started_and_records_alerts(short_dir: Path) -> None:
    launcher = FakeLauncher(short_dir)
    clock = iter(float(n) for n in range(100, 200))
    watcher = AlertWatcher(
        short_dir / "control.sock", short_dir / "events.sock", clock=lambda: next(clock)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(launcher.serve)
        await nursery.start(watcher.run)
        assert launcher.requests[0]["topics"] == ["events:alert", f"events:{MARKER_KIND}"]
        await launcher.publish({"kind": "alert", "rule": "ptrace_attach", "severity": "high"})
        await launcher.publish({"kind": MARKER_KIND, "marker": "someone else's"})
        await launcher.publish({"kind": "alert", "rule": "cron_write", "summary": "cron"})
        with trio.fail_after(5):
            done = await watcher.wait_until(
                lambda alerts: len(alerts) == 2, trio.current_time() + 5
            )
        assert done
        assert [(a.rule, a.received) for a in watcher.alerts] == [
            ("ptrace_attach", 100.0),
            ("cron_write", 101.0),
        ]
        assert watcher.alerts[0].severity == "high"
        assert not await watcher.wait_until(
            lambda alerts: len(alerts) > 2, trio.current_time() + 0.05
        )
        nursery.cancel_scope.cancel()


async def test_listeners_answer_as_a_shell_catcher_and_an_internal_service() -> None:
    async with attacks.listening("shell") as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            assert await stream.receive_some(100) == b"id\nexit\n"
    host = attacks.random_loopback(random.Random(5))
    assert host.startswith("127.") and host != "127.0.0.1"
    async with attacks.listening("http", host) as port, HttpConnection(host, port) as http:
        response = await http.request("GET", "/latest/meta-data/iam/")
        assert response.status == 200 and b"simulated" in response.body
    async with attacks.listening("none") as port:
        assert port == 0


def test_sandbox_is_created_seeded_and_removed(short_dir: Path) -> None:
    root = short_dir / "sim"
    with sandbox(root) as box:
        assert box.dir.parent == root and box.dir.stat().st_mode & 0o777 == 0o700
        for folder in box.directories:
            assert folder.is_dir()
        assert box.log_file.read_bytes().count(b"\n") == 20
        box.shm_file.write_text("left behind by a scenario")
    assert not box.dir.exists()
    assert not box.shm_file.exists()
    assert root.is_dir()  # shared by runs; only the run's own directory goes


def test_sandbox_root_planted_by_someone_else_is_refused(short_dir: Path) -> None:
    planted = short_dir / "planted"
    planted.write_text("not a directory")
    with pytest.raises(SandboxError, match="not a directory owned by"), sandbox(planted):
        pass
    if os.geteuid() == 0:
        other = short_dir / "other"
        other.mkdir()
        os.chown(other, 4242, 4242)
        with pytest.raises(SandboxError), sandbox(other):
            pass


def test_cli_lists_refuses_unknown_names_and_says_when_no_stack_runs(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert attacks.main(["--list"]) == 0
    assert "reverse_shell" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        attacks.main(["--only", "nope"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        attacks.main(["--proxy", "http://192.0.2.1:8080"])
    assert "loopback" in capsys.readouterr().err
    assert attacks.main(["--run-dir", str(short_dir)]) == attacks.EXIT_NO_STACK
    assert "no stack answers on" in capsys.readouterr().err


class FakeWatcher:
    """Alerts appear when the fake attacker says its attack was detected."""

    def __init__(self) -> None:
        self.alerts: list[SeenAlert] = []
        self._arrived = trio.Event()

    def add(self, rule: str) -> None:
        self.alerts.append(SeenAlert(rule, trio.current_time()))
        self._arrived.set()
        self._arrived = trio.Event()

    async def wait_until(self, condition, deadline):  # type: ignore[no-untyped-def]
        with trio.move_on_at(deadline):
            while not condition(self.alerts):
                await self._arrived.wait()
        return condition(self.alerts)


class FakeAttacker:
    def __init__(self, watcher: FakeWatcher, undetected: str) -> None:
        self.watcher = watcher
        self.undetected = undetected
        self.actions: list[object] = []

    async def perform(self, action: object) -> str | None:
        self.actions.append(action)
        scenario = SCENARIOS[len(self.actions) - 1]
        if scenario.name != self.undetected:
            for rule in scenario.expected:
                self.watcher.add(rule)
        self.watcher.add("web_server_unexpected_child")
        return "answered 403" if scenario.name == self.undetected else None


async def test_run_scenarios_attributes_alerts_and_cleans_up(short_dir: Path) -> None:
    watcher = FakeWatcher()
    attacker = FakeAttacker(watcher, undetected="ptrace")
    settings = attacks.RunSettings(
        timeout=0.2, settle=0.0, action_timeout=1.0, sandbox_root=short_dir / "sim"
    )
    lines: list[str] = []
    results = await attacks.run_scenarios(
        SCENARIOS,
        watcher,  # type: ignore[arg-type]
        attacker,  # type: ignore[arg-type]
        settings,
        lambda result: lines.append(render_line(result)),
    )
    assert [r.name for r in results] == [s.name for s in SCENARIOS]
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["ptrace"]
    assert failed[0].error == "answered 403" and failed[0].missing == ("ptrace_attach",)
    assert all(r.others == ("web_server_unexpected_child",) for r in results)
    assert "FAIL ptrace: missing ptrace_attach (attack failed: answered 403)" in lines
    assert lines[0].startswith("PASS web_shell: ")
    assert list((short_dir / "sim").iterdir()) == []  # the run's sandbox is gone


async def test_idle_keep_alive_connections_are_not_reused() -> None:
    """Servers close idle keep-alive connections; reusing one as it closes loses a request."""
    accepted: list[int] = []

    async def keep_alive(stream: trio.SocketStream) -> None:
        accepted.append(1)
        data = b""
        while chunk := await stream.receive_some(4096):
            data += chunk
            while b"\r\n\r\n" in data:
                _, data = data.split(b"\r\n\r\n", 1)
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, keep_alive, listeners)
        async with HttpConnection("127.0.0.1", port, max_idle=60) as http:
            for _ in range(3):
                assert (await http.request("GET", "/")).body == b"ok"
        assert len(accepted) == 1
        async with HttpConnection("127.0.0.1", port, max_idle=0) as http:
            for _ in range(3):
                assert (await http.request("GET", "/")).body == b"ok"
        assert len(accepted) == 4
        nursery.cancel_scope.cancel()
