"""How `up` chooses the TUI, the lifeline between the TUI and its launcher, crash logging."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sentinel_stack.cli.main import _use_tui, build_parser
from sentinel_stack.config.loader import load_config_text
from sentinel_stack.tui import run
from sentinel_stack.tui.app import SentinelApp
from tests.tui.fakes import FakeCommands, FakeFeed


def up_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *extra])


def config(tui: str = "") -> object:
    return load_config_text(f'[stack]\nname = "t"\n{tui}', "t.toml")


class Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("extra", "tui", "stdout", "stdin", "chosen"),
    [
        ((), "", True, True, True),
        (("--no-tui",), "", True, True, False),
        (("--json-logs",), "", True, True, False),
        ((), "[tui]\nenabled = false\n", True, True, False),
        ((), "", False, True, False),  # CI, a pipe, a file: headless output as before
        ((), "", True, False, False),
    ],
)
def test_up_uses_the_tui_only_on_a_terminal_when_not_told_otherwise(
    monkeypatch, extra, tui, stdout, stdin, chosen
):
    monkeypatch.setattr(sys, "stdout", Tty(stdout))
    monkeypatch.setattr(sys, "stdin", Tty(stdin))
    assert _use_tui(up_args(*extra), config(tui)) is chosen  # type: ignore[arg-type]


LIFELINE_CHILD = textwrap.dedent(
    """
    import os, sys, time, threading
    from sentinel_stack.tui.run import _hold_lifeline
    threading.Thread(target=_hold_lifeline, args=(int(sys.argv[1]),), daemon=True).start()
    print("ready", flush=True)
    time.sleep(30)
    """
)


def lifeline_child() -> tuple[subprocess.Popen[str], int]:
    read, write = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", LIFELINE_CHILD, str(read)],
        pass_fds=(read,),
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(read)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child, write


def test_the_launcher_stops_when_the_tui_vanishes():
    child, write = lifeline_child()
    os.close(write)  # the TUI process died without a word
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_the_launcher_stays_when_the_tui_detached():
    child, write = lifeline_child()
    os.write(write, run.DETACH)
    os.close(write)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=1)
    child.kill()
    child.wait()


class BrokenApp(SentinelApp):
    def tick(self, force: bool = False) -> None:
        raise RuntimeError("broken on purpose")


def test_a_failing_tui_is_logged_and_reported(short_dir, capsys):
    feed = FakeFeed()
    app = BrokenApp(feed, FakeCommands(feed))

    def headless() -> object:
        return SentinelApp.run(app, headless=True, size=(80, 24))

    app.run = headless  # type: ignore[method-assign]
    assert run._run_app(app, short_dir) is None
    log = (short_dir / "tui.log").read_text()
    assert "TUI failed" in log and "RuntimeError: broken on purpose" in log
    assert f"traceback in {short_dir / 'tui.log'}" in capsys.readouterr().err
