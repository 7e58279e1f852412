"""The detector's core without sockets: stream lines in, alerts out, reloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sentinel_stack.detect.rules_loader import RulesError
from sentinel_stack.detect.service import Detector, DetectorSettings
from sentinel_stack.probe import events as ev
from tests.detect.detectkit import RULES_DIR, T0, exec_

CONFIG = """
[processes.web]
command = ["true"]

[upstreams.web]
targets = ["127.0.0.1:1"]
process = "web"

[detector]
rules_dir = "rules"
"""
STATUS = {
    "stack": {"pid": 1},
    "children": [{"name": "web", "kind": "process", "pid": 77, "state": "running"}],
}


@pytest.fixture
def detector(tmp_path: Path) -> Detector:
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    (tmp_path / "stack.toml").write_text(CONFIG)
    settings = DetectorSettings(rules_dir=tmp_path / "rules", config_path=tmp_path / "stack.toml")
    return Detector(settings, STATUS, environ={})


def line(event: object) -> bytes:
    return b'{"id":1,"event":' + ev.EVENT_ENCODER.encode(event) + b"}"


def shell(pid: int = 500) -> ev.ExecEvent:
    return exec_(["/bin/sh", "-c", "id"], comm="sh", pid=pid, lineage=[ev.Ancestor(77, "python3")])


def test_stream_lines_become_alerts_and_own_alerts_are_ignored(detector: Detector) -> None:
    rules = [a.rule for a in detector.handle_line(line(shell()), T0)]
    assert "web_server_spawned_shell" in rules
    own = b'{"id":1,"event":{"kind":"alert","time":1,"source":"detector","rule":"x","summary":""}}'
    assert detector.handle_line(own, T0) == []
    assert detector.handle_line(b"garbage", T0) == [] and detector.skipped == 1


def test_a_broken_reload_keeps_the_rules_and_says_so(detector: Detector) -> None:
    rules_dir = detector.settings.rules_dir
    (rules_dir / "20-bad.toml").write_text('[macros]\nm = "proc.name = (x"\n')
    alert = detector.reload(T0)
    assert alert is not None and alert.rule == "rules_reload_failed"
    assert "20-bad.toml:2:" in alert.summary and alert.severity == "high"
    assert "web_server_spawned_shell" in [
        a.rule for a in detector.handle_line(line(shell(501)), T0)
    ]
    (rules_dir / "20-bad.toml").write_text(
        '[[rules]]\nid = "web_server_spawned_shell"\nenabled = false\n'
    )
    assert detector.reload(T0) is None
    assert "web_server_spawned_shell" not in [
        a.rule for a in detector.handle_line(line(shell(502)), T0)
    ]


def test_bad_rules_at_start_are_fatal(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text('[[rules]]\nid = "x"\n')
    with pytest.raises(RulesError):
        Detector(DetectorSettings(rules_dir=tmp_path), None, environ={})
