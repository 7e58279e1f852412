"""`sentinel-stack probe record|replay` against a running stack (no kernel needed: a replay
feeds the hub, and a recording taken at the same time must capture exactly those events)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.integration.stackkit import StackKit
from tests.integration.test_cli import CLI, Launcher, _no_leaked_launchers, cli

__all__ = ["_no_leaked_launchers"]


def _events(count: int) -> str:
    now = time.time()
    lines = [
        {"kind": "kernel.exec", "time": now + i / 1000, "pid": 4000 + i, "comm": "sh",
         "filename": "/bin/sh", "argv": ["sh", "-c", "id"]}
        for i in range(count)
    ]  # fmt: skip
    return "\n".join(map(json.dumps, lines)) + "\n"


@pytest.fixture
def launcher(short_dir):
    kit = StackKit(short_dir)
    kit.child("web")
    config = kit.dir / "stack.toml"
    config.write_text(kit.text("rec"))
    running = Launcher(config, kit.dir / "run")
    running.wait_for_output("all 1 children ready")
    yield running
    running.stop()


def test_record_captures_what_reaches_the_hub_and_replay_sends_it(launcher, short_dir):
    source = short_dir / "source.jsonl"
    source.write_text(_events(25) + "not json\n")
    recording = short_dir / "rec.jsonl"
    recorder = subprocess.Popen(
        [*CLI, "probe", "record", str(recording), "--duration", "20", *launcher.args],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while "recording" not in (recorder.stderr.readline() if recorder.stderr else ""):
        assert time.monotonic() < deadline
    while _hub(launcher)["subscribers"] < 1:  # the subscription follows the banner
        assert time.monotonic() < deadline
        time.sleep(0.02)
    replayed = launcher.ctl("probe", "replay", str(source), "--retime")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 25 events" in replayed.stderr
    assert "source.jsonl:26: not a probe event" in replayed.stderr
    deadline = time.monotonic() + 10
    while not recording.exists() or len(recording.read_text().splitlines()) < 25:
        assert time.monotonic() < deadline, "the recording never got the replayed events"
        time.sleep(0.05)
    recorder.terminate()
    recorder.wait(timeout=10)
    got = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [e["pid"] for e in got] == [4000 + i for i in range(25)]
    assert all(e["kind"] == "kernel.exec" and e["argv"] == ["sh", "-c", "id"] for e in got)


def _hub(launcher: Launcher) -> dict:
    status = launcher.ctl("status", "--json")
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)["events"]


def test_replay_without_a_stack_prints_the_events(short_dir):
    source = short_dir / "source.jsonl"
    source.write_text(_events(3))
    done = cli("probe", "replay", str(source), "--run-dir", str(short_dir / "none"))
    assert done.returncode == 0, done.stderr
    assert "no stack is running" in done.stderr
    assert [json.loads(line)["pid"] for line in done.stdout.splitlines()] == [4000, 4001, 4002]


def test_record_duration_ends_the_recording(launcher, short_dir):
    recording = short_dir / "quiet.jsonl"
    started = time.monotonic()
    done = launcher.ctl("probe", "record", str(recording), "--duration", "1")
    assert done.returncode == 0, done.stderr
    assert 1.0 <= time.monotonic() - started < 10
    assert "recorded 0 events" in done.stderr
