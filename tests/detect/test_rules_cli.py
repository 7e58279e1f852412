"""`sentinel-stack rules test|lint|fields`, in process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest

from sentinel_stack.cli.main import main
from sentinel_stack.probe import events as ev
from tests.detect.detectkit import RULES_DIR, T0, access, exec_, open_

NGINX = [ev.Ancestor(pid=80, comm="nginx", exe="/usr/sbin/nginx")]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    lines = [
        ev.EVENT_ENCODER.encode(
            exec_(["/usr/bin/git", "status"], lineage=[ev.Ancestor(5, "bash")])
        ),
        ev.EVENT_ENCODER.encode(
            exec_(["/bin/sh", "-c", "id"], comm="sh", lineage=NGINX, time=T0 + 1)
        ),
        b"this line is not an event",
        msgspec.json.encode(access("/f", "p=../../etc/shadow", time=T0 + 2)),
        ev.EVENT_ENCODER.encode(
            open_(
                "/srv/../../etc/shadow",
                reasons=("traversal", "sensitive"),
                comm="nginx",
                lineage=[NGINX[0]],
                time=T0 + 2.5,
            )
        ),
        b"",
    ]
    path = tmp_path / "recording.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_rules_test_prints_what_fired(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(recording), "--rules-dir", str(RULES_DIR)]) == 0
    out, err = capsys.readouterr()
    assert "line 2  critical web_server_spawned_shell: Shell sh" in out
    assert "traversal_read" in out and "sensitive_file_read" in out
    assert "4 events (1 skipped)" in out
    assert "recording.jsonl:3: not an event; skipped" in err


def test_rules_test_json(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(recording), "--rules-dir", str(RULES_DIR), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 4 and report["skipped"] == 1
    assert report["counts"]["web_server_spawned_shell"] == 1
    shell = next(a for a in report["alerts"] if a["rule"] == "web_server_spawned_shell")
    assert shell["line"] == 2 and shell["technique"] == "T1059.004"


def test_rules_lint_passes_the_bundled_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "lint", "--rules-dir", str(RULES_DIR)]) == 0
    assert capsys.readouterr().out.startswith("OK: 20 rules (20 enabled)")


def test_rules_lint_reports_errors_and_rules_that_never_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    (rules / "50-local.toml").write_text(
        '[[rules]]\nid = "odd"\nseverity = "low"\noutput = "x"\n'
        'condition = "evt.kind = kernel.exec and net.dport = 4444"\n'
    )
    assert main(["rules", "lint", "--rules-dir", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "50-local.toml:1: rule odd: can never match" in out
    (rules / "60-broken.toml").write_text('[macros]\nm = "proc.name in (sh"\n')
    assert main(["rules", "lint", "--rules-dir", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "60-broken.toml:2:22: expected `,` or `)` in the list" in err


def test_rules_fields_lists_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "fields"]) == 0
    out = capsys.readouterr().out
    assert "proc.ancestors.name" in out and "req.path" in out and "child.state" in out
