"""`python -m sentinel_stack.detect --serve-events PATH`: the detector as its own process, no
launcher anywhere, a producer writing a kernel event to it, the alert in its alert file."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

import trio

from sentinel_stack.probe import events as ev
from tests.agents.agent_programs import wait_until
from tests.detect.detectkit import RULES_DIR, open_

DEADLINE = 30


def clean_environment() -> dict[str, str]:
    """Nothing of a launcher: no run dir, no hub, no inherited sockets."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "LISTEN_"))}


def alerts_in(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_standalone_detector_process_serves_the_hub_and_alerts(short_dir: Path) -> None:
    hub, alerts, notify_path = (
        short_dir / "events.sock",
        short_dir / "alerts.jsonl",
        short_dir / "notify.sock",
    )
    notes = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notes.bind(str(notify_path))
    argv = [
        sys.executable,
        "-m",
        "sentinel_stack.detect",
        "--serve-events",
        str(hub),
        "--rules-dir",
        str(RULES_DIR),
        "--alert-file",
        str(alerts),
    ]
    env = {**clean_environment(), "NOTIFY_SOCKET": str(notify_path)}
    stderr = short_dir / "detector.stderr"
    with stderr.open("wb") as sink:
        process = await trio.lowlevel.open_process(argv, env=env, stderr=sink)
    try:
        with trio.fail_after(DEADLINE):
            while "READY=1" not in (await notes.recv(4096)).decode().split("\n"):
                pass
            read = open_("/etc/shadow", reasons=("sensitive",), comm="cat", lineage=[])
            stream = await trio.open_unix_socket(str(hub))
            async with stream:
                await stream.send_all(ev.EVENT_ENCODER.encode(read) + b"\n")
            await wait_until(lambda: bool(alerts_in(alerts)), timeout=DEADLINE)
        (alert,) = alerts_in(alerts)
        assert alert["rule"] == "sensitive_file_read", alert
        assert alert["technique"] == "T1552.001"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(DEADLINE) as cleanup:
            cleanup.shield = True
            await process.wait()
        notes.close()
    log = stderr.read_text()
    assert process.returncode == 0, log
    assert "ALERT sensitive_file_read" in log  # also in the log: the journal's copy
    assert "these rules cannot fire: crash_loop" in log
    assert not hub.exists()
