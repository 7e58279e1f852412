"""A real launcher writes the audit log: a restart and an alert land in it, `status --json`
shows where, and a clean stop leaves a log that verifies and is sealed."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_stack.audit.layout import iter_records, log_files
from tests.integration.stackkit import StackKit

CLI = [sys.executable, "-m", "sentinel_stack"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30)


def wait_until(condition, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def launcher(short_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], list[str], Path]]:
    kit = StackKit(short_dir)
    kit.child("worker")
    audit = short_dir / "audit"
    config = short_dir / "stack.toml"
    config.write_text(
        kit.text("audited")
        + f'\n\n[audit]\ndir = "{audit}"\nkey_file = "{short_dir / "keys" / "a.key"}"\n'
    )
    args = ["-c", str(config), "--run-dir", str(short_dir / "run")]
    output = short_dir / "up.out"
    proc = subprocess.Popen(
        [*CLI, "up", "--no-tui", *args],
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: "children ready" in output.read_text(), "the stack to start")
        yield proc, args, audit
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def types(audit: Path) -> list[str]:
    return [r.type for r in iter_records(log_files(audit))]


def test_restart_alert_status_and_a_sealed_log(launcher, short_dir: Path) -> None:  # type: ignore[no-untyped-def]
    proc, args, audit = launcher
    status = json.loads(cli("status", "--json", *args).stdout)["audit"]
    assert status["path"] == str(audit / "audit-000001.jsonl")
    assert status["error"] is None and status["head"]["seq"] >= 2
    assert status["last_checkpoint"]["seq"] is not None

    assert cli("restart", "worker", *args).returncode == 0
    with socket.socket(socket.AF_UNIX) as hub:
        hub.connect(str(short_dir / "run" / "events.sock"))
        alert = {"kind": "alert", "time": time.time(), "source": "test", "rule": "r1",
                 "severity": "high", "summary": "seen by the audit log"}  # fmt: skip
        hub.sendall(json.dumps(alert).encode() + b"\n")
    wait_until(
        lambda: {"process_restart", "alert"} <= set(types(audit)),
        "the restart and the alert in the audit log (written within one batch)",
    )
    assert types(audit).count("process_restart") == 1  # one restart, one record
    restart = next(r for r in iter_records(log_files(audit)) if r.type == "process_restart")
    assert restart.data["child"] == "worker"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    verify = cli("audit", "verify", "--json", *args)
    report = json.loads(verify.stdout)
    assert verify.returncode == 0, report["problems"]
    assert report["sealed"] and "process_stop" in types(audit)
