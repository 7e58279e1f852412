"""The real `sentinel-stack up` with its TUI, in a real terminal (tmux), driven by keys.

Each test runs a private tmux server (`tmux -L <unique>`), starts `up` in a 120x40 pane,
reads the screen with `capture-pane` and checks processes with the control API and /proc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.stackkit import StackKit, pid_alive

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sentinel_stack"]


class Tmux:
    def __init__(self, workdir: Path) -> None:
        self.server = f"sentinel-tui-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir

    def __call__(self, *args: str) -> str:
        # pytest plugins export COLUMNS/LINES (80x24), which Textual would obey over the pane
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        done = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=10, env=env
        )
        return done.stdout

    def start(self, window: str, command: list[str], width: int = 120, height: int = 40) -> Path:
        """Run ``command`` in a new session (one pane); its exit code lands in the returned file."""
        exit_file = self.workdir / f"{window}.exit"
        shell = f"cd {REPO} && {' '.join(command)}; echo $? > {exit_file}; sleep 60"
        self("new-session", "-d", "-s", window, "-x", str(width), "-y", str(height), shell)
        return exit_file

    def screen(self, window: str) -> str:
        return self("capture-pane", "-p", "-t", window)

    def keys(self, window: str, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", window, key)
            time.sleep(0.15)

    def pane_pid(self, window: str) -> int:
        return int(self("display", "-p", "-t", window, "#{pane_pid}").strip())

    def wait_screen(self, window: str, check: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(window)
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        self("kill-server")


def wait_until(check: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def exit_code(path: Path, timeout: float = 30) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout, str(path))
    return int(path.read_text())


class Stack:
    def __init__(self, kit: StackKit) -> None:
        kit.child("db")
        kit.child("web", "--grandchild", depends_on=["db"])
        kit.child("agent", "--serve-socket", table="agents")
        self.config = kit.dir / "stack.toml"
        self.config.write_text(kit.text("tuitest"))
        self.run_dir = kit.dir / "run"
        self.args = ["-c", str(self.config), "--run-dir", str(self.run_dir)]

    def status(self) -> dict[str, object]:
        done = subprocess.run(
            [*CLI, "status", "--json", *self.args], capture_output=True, text=True, timeout=30
        )
        return json.loads(done.stdout) if done.returncode == 0 else {}

    def pids(self) -> set[int]:
        """The launcher, every child and the web child's grandchild."""
        status = self.status()
        pids = {int(status["stack"]["pid"])}  # type: ignore[index]
        pids |= {int(c["pid"]) for c in status["children"] if c["pid"]}  # type: ignore[attr-defined]
        log = (self.run_dir / "logs" / "web.log").read_text()
        pids |= {int(p) for p in re.findall(r"grandchild (\d+)", log)}
        return pids


@pytest.fixture
def tmux(short_dir: Path) -> Iterator[Tmux]:
    server = Tmux(short_dir)
    yield server
    server.kill()


@pytest.fixture
def stack(short_dir: Path) -> Iterator[Stack]:
    made = Stack(StackKit(short_dir))
    yield made
    # whatever happened, no launcher outlives the test
    lock = made.run_dir / "launcher.lock"
    if lock.exists() and (owner := lock.read_text().strip()).isdigit() and pid_alive(int(owner)):
        os.kill(int(owner), signal.SIGTERM)
        wait_until(lambda: not pid_alive(int(owner)), 20, "the launcher to stop")


def all_running(screen: str) -> bool:
    return all(re.search(rf"\b{n}\b.*● running", screen) for n in ("agent", "db", "web"))


def test_up_shows_every_child_restarts_one_and_q_stops_everything(tmux, stack):
    exit_file = tmux.start("up", [*CLI, "up", *stack.args])
    tmux.wait_screen("up", all_running)
    before = stack.status()
    web_pid = next(c["pid"] for c in before["children"] if c["name"] == "web")  # type: ignore[attr-defined]
    pids = stack.pids()

    tmux.keys("up", "Down", "Down")  # agent, db, web: sorted by name
    wait_until(lambda: "log: web" in tmux.screen("up"), 5, "web to be selected")
    tmux.keys("up", "r")

    def restarted() -> bool:
        child = next(c for c in stack.status()["children"] if c["name"] == "web")  # type: ignore[attr-defined]
        return child["state"] == "running" and child["pid"] != web_pid

    wait_until(restarted, 20, "web to restart")
    new_pid = next(c["pid"] for c in stack.status()["children"] if c["name"] == "web")  # type: ignore[attr-defined]
    tmux.wait_screen("up", lambda s: str(new_pid) in s and all_running(s))
    pids |= stack.pids()

    tmux.keys("up", "q")
    assert exit_code(exit_file) == 0
    assert "stack `tuitest` stopped" in tmux.screen("up")
    wait_until(lambda: not any(pid_alive(p) for p in pids), 10, "every process to be gone")
    assert not (stack.run_dir / "control.sock").exists()


def test_detach_leaves_the_stack_running_and_attach_stops_it(tmux, stack):
    up_exit = tmux.start("up", [*CLI, "up", *stack.args])
    tmux.wait_screen("up", all_running)
    pids = stack.pids()
    tmux.keys("up", "d")
    assert exit_code(up_exit) == 0
    assert "detached" in tmux.screen("up")
    assert all(pid_alive(p) for p in pids)

    viewer_exit = tmux.start("viewer", [*CLI, "attach", "--read-only", *stack.args])
    tmux.wait_screen("viewer", lambda s: all_running(s) and "read-only" in s)
    tmux.keys("viewer", "q")
    assert exit_code(viewer_exit) == 0
    assert all(pid_alive(p) for p in pids)

    attach_exit = tmux.start("attach", [*CLI, "attach", *stack.args])
    tmux.wait_screen("attach", all_running)
    tmux.keys("attach", "q")
    tmux.wait_screen("attach", lambda s: "Stop the whole stack" in s, 5)
    tmux.keys("attach", "y")
    assert exit_code(attach_exit) == 0
    wait_until(lambda: not any(pid_alive(p) for p in pids), 10, "every process to be gone")


def test_a_killed_tui_takes_its_stack_down(tmux, stack):
    exit_file = tmux.start("up", [*CLI, "up", *stack.args])
    tmux.wait_screen("up", all_running)
    pids = stack.pids()
    shell = tmux.pane_pid("up")
    tui = int(Path(f"/proc/{shell}/task/{shell}/children").read_text().split()[0])
    os.kill(tui, signal.SIGKILL)
    assert exit_code(exit_file) == 128 + signal.SIGKILL
    wait_until(lambda: not any(pid_alive(p) for p in pids), 20, "every process to be gone")


def test_closing_the_terminal_ends_the_tui_and_its_stack(tmux, stack):
    tmux.start("up", [*CLI, "up", *stack.args])
    tmux.wait_screen("up", all_running)
    shell = tmux.pane_pid("up")
    tui = int(Path(f"/proc/{shell}/task/{shell}/children").read_text().split()[0])
    pids = stack.pids() | {tui}
    tmux("kill-session", "-t", "up")  # the terminal goes away: SIGHUP
    wait_until(lambda: not any(pid_alive(p) for p in pids), 20, "the TUI and the stack to end")


CRASHING_TUI = """
import sys
from sentinel_stack.tui import app
from sentinel_stack.cli.main import main

def explode(self, *args, **kwargs):
    raise RuntimeError("the TUI blew up (on purpose, in a test)")

app.SentinelApp.tick = explode
sys.exit(main(sys.argv[1:]))
"""


def test_a_tui_exception_is_logged_and_the_stack_shut_down(tmux, stack, short_dir):
    script = short_dir / "crashing_tui.py"
    script.write_text(CRASHING_TUI)
    exit_file = tmux.start("up", [sys.executable, str(script), "up", *stack.args])
    wait_until(lambda: (stack.run_dir / "tui.log").exists(), 20, "the TUI to fail")
    assert exit_code(exit_file) == 1
    assert "the TUI blew up" in (stack.run_dir / "tui.log").read_text()
    assert "traceback in" in tmux.screen("up")
    wait_until(lambda: not (stack.run_dir / "control.sock").exists(), 10, "the launcher to stop")
    web_log = (stack.run_dir / "logs" / "web.log").read_text()
    for pid in re.findall(r"grandchild (\d+)", web_log):
        wait_until(lambda p=int(pid): not pid_alive(p), 10, "the grandchild to be gone")
