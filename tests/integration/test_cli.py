"""`sentinel-stack` end to end: the launcher as a real process, driven from another one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.stackkit import StackKit, pid_alive

CLI = [sys.executable, "-m", "sentinel_stack"]


def cli(*args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kw)


class Launcher:
    running: list[Launcher] = []  # stopped by the `_no_leaked_launchers` fixture

    def __init__(self, config: Path, run_dir: Path, *extra: str) -> None:
        Launcher.running.append(self)
        self.args = ["-c", str(config), "--run-dir", str(run_dir)]
        self.run_dir = run_dir
        self.output = run_dir.parent / "up.out"
        self.proc = subprocess.Popen(
            [*CLI, "up", *self.args, *extra],
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for_output(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never printed {needle!r}:\n{self.text()}")
            time.sleep(0.02)

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return cli(*args, *self.args, timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _no_leaked_launchers():
    """Whatever a test asserts, no launcher it started outlives it."""
    yield
    while Launcher.running:
        launcher = Launcher.running.pop()
        if launcher.proc.poll() is None:
            launcher.proc.terminate()
            try:
                launcher.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                launcher.proc.kill()
                launcher.proc.wait()


@pytest.fixture
def kit(short_dir):
    return StackKit(short_dir)


@pytest.fixture
def stack(kit):
    kit.child("db")
    kit.child("web", "--grandchild", depends_on=["db"])
    kit.child("agent", "--serve-socket", table="agents")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("cli"))
    launcher = Launcher(config, kit.dir / "run")
    launcher.wait_for_output("all 3 children ready")
    yield launcher
    launcher.stop()


def test_status_start_stop_restart_logs_and_down(stack):
    status = json.loads(stack.ctl("status", "--json").stdout)
    children = {c["name"]: c for c in status["children"]}
    assert {c["state"] for c in children.values()} == {"running"}
    assert children["web"]["rss"] > 0 and children["web"]["threads"] >= 1

    table = stack.ctl("status").stdout
    assert "NAME" in table and "web" in table and "running" in table

    old = children["web"]["pid"]
    assert stack.ctl("restart", "web").stdout.strip() == "web: running"
    new = json.loads(stack.ctl("status", "--json").stdout)
    assert {c["name"]: c["pid"] for c in new["children"]}["web"] != old

    assert stack.ctl("stop", "db").stdout.strip() == "db: stopped"
    assert stack.ctl("start", "db").stdout.strip() == "db: running"

    logs = stack.ctl("logs", "web", "-n", "50").stdout
    assert "web up pid" in logs and "running" in logs

    unknown = stack.ctl("stop", "nope")
    assert unknown.returncode != 0 and "no child named `nope`" in unknown.stderr

    down = stack.ctl("down")
    assert down.returncode == 0
    assert stack.proc.wait(timeout=15) == 0
    assert not (stack.run_dir / "control.sock").exists()


def test_logs_follow_streams_new_lines(stack):
    follower = subprocess.Popen(
        [*CLI, "logs", "web", "-f", "-n", "0", *stack.args], stdout=subprocess.PIPE, text=True
    )
    try:
        stack.ctl("restart", "web")
        seen = ""
        deadline = time.monotonic() + 15
        while "web up pid" not in seen and time.monotonic() < deadline:
            seen += follower.stdout.readline()
        assert "web up pid" in seen
    finally:
        follower.kill()
        follower.wait()


def test_clients_that_vanish_mid_stream_do_not_harm_the_launcher(stack):
    control = str(stack.run_dir / "control.sock")
    for op in (
        b'{"op": "subscribe", "id": 1}\n',
        b'{"op": "logs", "name": "web", "follow": true}\n',
    ):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(control)
            s.sendall(op)
    with socket.socket(socket.AF_UNIX) as s:  # and one that sends garbage
        s.connect(control)
        s.sendall(b"{not json\n")
        assert b'"bad-request"' in s.recv(4096)
    stack.ctl("status")  # the launcher has read every request above by now
    stack.ctl("restart", "web")  # makes events flow to the dead subscribers
    assert json.loads(stack.ctl("status", "--json").stdout)["children"]
    assert stack.proc.poll() is None


def test_second_up_of_the_same_stack_refuses(stack):
    again = cli("up", *stack.args, timeout=30)
    assert again.returncode == 3
    assert "already running" in again.stderr and "sentinel-stack down" in again.stderr


def test_no_orphans_after_sigkill_of_the_launcher(stack):
    status = json.loads(stack.ctl("status", "--json").stdout)
    pids = [c["pid"] for c in status["children"]]
    logs = stack.ctl("logs", "web", "-n", "100").stdout
    grandchild = int(logs.split("grandchild ", 1)[1].split()[0])
    assert all(pid_alive(p) for p in [*pids, grandchild])
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait()
    killed_at = time.monotonic()
    while any(pid_alive(p) for p in [*pids, grandchild]):
        assert time.monotonic() - killed_at < 2.0, "children outlived the launcher by 2 s"
        time.sleep(0.01)
    # and the next launcher cleans up what the dead one left
    relaunch = Launcher(Path(stack.args[1]), stack.run_dir)
    relaunch.wait_for_output("all 3 children ready")
    assert relaunch.stop() == 0


def test_sigterm_is_a_graceful_shutdown_in_reverse_order(stack):
    assert stack.stop() == 0
    text = stack.text()
    assert text.index("web        ▸ stopped") < text.index("db         ▸ stopped")
    assert "stopped" in text.splitlines()[-1]


def test_control_socket_is_private_and_checks_the_peer(stack):
    control = stack.run_dir / "control.sock"
    assert oct(control.stat().st_mode & 0o777) == "0o600"
    assert oct(stack.run_dir.stat().st_mode & 0o777) == "0o700"
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    # Open the file permissions on purpose: SO_PEERCRED must still refuse a stranger.
    os.chmod(stack.run_dir.parent, 0o755)
    os.chmod(stack.run_dir, 0o755)
    os.chmod(control, 0o666)
    try:
        probe = (
            "import os, socket; os.setuid(65534);"  # gid stays 0: only the uid may decide
            f"s = socket.socket(socket.AF_UNIX); s.connect({str(control)!r});"
            "s.settimeout(5); print(s.recv(4096).decode())"  # refused before any request
        )
        answer = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=10
        )
        assert '"forbidden"' in answer.stdout, answer.stderr
    finally:
        os.chmod(stack.run_dir, 0o700)
        os.chmod(control, 0o600)


def test_sighup_reloads_only_changed_children(stack, kit):
    before = {
        c["name"]: c["pid"] for c in json.loads(stack.ctl("status", "--json").stdout)["children"]
    }
    config = Path(stack.args[1])
    config.write_text(
        config.read_text().replace('"--grandchild"', '"--grandchild", "--ready-after", "0"')
    )
    stack.proc.send_signal(signal.SIGHUP)
    stack.wait_for_output("reloaded: ~web")
    deadline = time.monotonic() + 10
    while True:
        after = {
            c["name"]: (c["pid"], c["state"])
            for c in json.loads(stack.ctl("status", "--json").stdout)["children"]
        }
        if after["web"][1] == "running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["web"][1] == "running" and after["web"][0] != before["web"]
    assert after["db"][0] == before["db"] and after["agent"][0] == before["agent"]


def test_a_fatal_critical_child_ends_up_with_an_error(kit):
    kit.child(
        "core", "--exit-after", "0.1", critical=True, max_restarts=1, backoff={"initial": "10ms"}
    )
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("crit"))
    launcher = Launcher(config, kit.dir / "run")
    assert launcher.proc.wait(timeout=30) == 1
    assert "stopping the stack: `core` is fatal" in launcher.text()


def test_json_logs_are_machine_readable(kit):
    kit.child("one")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("jsonl"))
    launcher = Launcher(config, kit.dir / "run", "--json-logs")
    launcher.wait_for_output('"all 1 children ready')
    assert launcher.stop() == 0
    records = [json.loads(line) for line in launcher.text().splitlines() if line.strip()]
    assert {"state", "log", "stack"} <= {r["type"] for r in records}


def test_up_only_runs_the_named_child_and_its_dependencies(kit):
    kit.child("db")
    kit.child("web", depends_on=["db"])
    kit.child("other")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("only"))
    launcher = Launcher(config, kit.dir / "run", "--only", "web")
    launcher.wait_for_output("all 2 children ready")
    names = {c["name"] for c in json.loads(launcher.ctl("status", "--json").stdout)["children"]}
    assert launcher.stop() == 0
    assert names == {"db", "web"}


def test_up_agents_only_and_status_watch(kit):
    kit.child("web")
    kit.child("guard", "--serve-socket", table="agents")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("agentsonly"))
    launcher = Launcher(config, kit.dir / "run", "--agents-only")
    launcher.wait_for_output("all 1 children ready")
    watcher = subprocess.Popen(
        [*CLI, "status", "--watch", "0.2", *launcher.args], stdout=subprocess.PIPE, text=True
    )
    try:
        first = [watcher.stdout.readline() for _ in range(3)]
        assert first[0].startswith("stack agentsonly")
        assert "guard" in first[2] and "agent" in first[2] and "running" in first[2]
        assert watcher.stdout.readline().startswith("as of")
        assert watcher.stdout.readline().startswith("stack agentsonly")  # it refreshes
    finally:
        watcher.kill()
        watcher.wait()
    assert launcher.stop() == 0


def test_commands_without_a_running_stack_say_so(short_dir):
    result = cli("status", "--run-dir", str(short_dir / "none"))
    assert result.returncode == 3
    assert "no stack is running" in result.stderr


def test_validate_prints_the_plan_or_every_error(short_dir):
    good = short_dir / "good.toml"
    good.write_text(
        '[processes.web]\ncommand = "sleep 100"\nports = [9999]\n'
        '[processes.job]\ncommand = "true"\ndepends_on = ["web"]\n'
        'env = { API_TOKEN = "hunter2", MODE = "x" }\n'
    )
    result = cli("validate", "-c", str(good), "--run-dir", str(short_dir / "r"))
    assert result.returncode == 0, result.stderr
    assert "1. web (process)" in result.stdout and "2. job (process)" in result.stdout
    assert "API_TOKEN=******" in result.stdout and "hunter2" not in result.stdout
    assert "job ← web" in result.stdout

    bad = short_dir / "bad.toml"
    bad.write_text(
        '[processes.web]\ncommand = "x"\nrestart_polcy = "always"\n'
        '[processes.job]\ncommand = "y"\ndepends_on = ["nothing"]\n'
    )
    result = cli("validate", "-c", str(bad))
    assert result.returncode == 2
    assert (
        f"{bad}:3: processes.web.restart_polcy: unknown key `restart_polcy`, "
        "did you mean `restart_policy`?" in result.stderr
    )


def test_init_writes_a_valid_config_and_never_overwrites(short_dir):
    target = short_dir / "sentinel-stack.toml"
    assert cli("init", str(target), "--profile", "minimal").returncode == 0
    assert target.read_text().startswith("# sentinel-stack configuration")
    refused = cli("init", str(target))
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert cli("init", str(target), "--force", "--profile", "full").returncode == 0
    assert "(full profile)" in target.read_text()
    assert cli("validate", "-c", str(target), "--run-dir", str(short_dir / "r")).returncode == 0


def test_embedded_default_dry_run(short_dir):
    result = cli("up", "--dry-run", "--run-dir", str(short_dir / "r"), cwd=short_dir)
    assert result.returncode == 0, result.stderr
    assert "config:   <embedded default>" in result.stdout and "demo" in result.stdout


def test_the_agent_socket_is_handed_over(stack):
    path = stack.run_dir / "agents" / "agent.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"hello")
        assert s.recv(100).endswith(b":hello")


def test_two_stacks_with_one_name_in_different_run_dirs_keep_apart(kit, short_dir):
    kit.child("svc")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("twin"))
    first = Launcher(config, kit.dir / "run-a")
    first.wait_for_output("all 1 children ready")
    second = Launcher(config, kit.dir / "run-b")
    second.wait_for_output("all 1 children ready")
    for launcher in (first, second):
        children = json.loads(launcher.ctl("status", "--json").stdout)["children"]
        assert children[0]["state"] == "running" and pid_alive(children[0]["pid"])
        assert children[0]["restarts"] == 0  # the second start did not kill the first's child
    assert first.stop() == 0 and second.stop() == 0


def test_up_detach_returns_once_ready_and_the_stack_keeps_running(kit):
    kit.child("web", "--ready-after", "0.3")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("bg"))
    args = ["-c", str(config), "--run-dir", str(kit.dir / "run")]
    done = cli("up", "-d", *args)
    try:
        assert done.returncode == 0, done.stderr
        assert "up in the background" in done.stdout
        status = json.loads(cli("status", "--json", *args).stdout)
        assert [c["state"] for c in status["children"]] == ["running"]
        assert "children ready" in (kit.dir / "run" / "launcher.log").read_text()
        again = cli("up", "-d", *args)
        assert again.returncode == 3 and "already running" in again.stderr
    finally:
        assert cli("down", *args).returncode == 0


def test_a_subscription_to_events_and_state_survives_a_slow_reader(stack):
    """Hub lines and bus events are answered by two tasks: with the client not reading, both
    block on one socket, and must take turns instead of failing the subscription."""
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(stack.run_dir / "control.sock"))
    client.sendall(b'{"op": "subscribe", "id": 1, "topics": ["events", "state"]}\n')
    filler = "x" * 200
    with socket.socket(socket.AF_UNIX) as producer:
        producer.connect(str(stack.run_dir / "events.sock"))
        producer.sendall(
            "".join(
                json.dumps({"kind": "test.flood", "time": i, "pad": filler}) + "\n"
                for i in range(20_000)
            ).encode()
        )
    assert stack.ctl("restart", "db").returncode == 0  # state events while the hub blocks
    client.settimeout(10)
    buffer, seen_restart = b"", False
    deadline = time.monotonic() + 20
    while not seen_restart:
        assert time.monotonic() < deadline, "the subscription went quiet"
        chunk = client.recv(1 << 16)
        assert chunk, f"the launcher dropped the subscription:\n{stack.text()[-2000:]}"
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        seen_restart = any(b'"db"' in line and b'"running"' in line for line in lines)
    client.close()
    assert "answering a client failed" not in stack.text()


def test_a_second_interrupt_kills_every_child_and_the_launcher_ends(kit):
    """A child that ignores SIGTERM would hold the shutdown for its stop timeout; the second
    SIGTERM (or Ctrl-C) kills it at once and the launcher exits, leaving nothing behind."""
    kit.child("stubborn", "--ignore-term", "--grandchild", stop_timeout="60s")
    kit.child("plain")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("second"))
    launcher = Launcher(config, kit.dir / "run")
    launcher.wait_for_output("all 2 children ready")
    pids = [pid for _, pid, _ in kit.records()]
    launcher.proc.send_signal(signal.SIGTERM)
    launcher.wait_for_output("stopping the stack")
    started = time.monotonic()
    launcher.proc.send_signal(signal.SIGTERM)
    assert launcher.proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 10
    assert "second interrupt: killing every child now" in launcher.text()
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a child outlived the launcher"
        time.sleep(0.05)
