"""systemd units: `systemd-analyze verify` accepts them, a socket-activated agent started
exactly as its units say (through systemd-socket-activate) answers the agent protocol, and
the detector started the same way serves the event hub and raises an alert."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from sentinel_stack.agent import connect_agent
from sentinel_stack.export.systemd import slice_cgroup
from sentinel_stack.probe import events as ev
from sentinel_stack.protocol import Allow, Block, RequestComplete
from tests.agents.agent_programs import request, wait_until
from tests.detect.detectkit import RULES_DIR
from tests.export.exports import CONFIGS, export, run, write

ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate") or next(
    (p for p in ("/lib/systemd/systemd-socket-activate",) if Path(p).exists()), None
)
DEADLINE = 30


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sxe-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def unit(text: str) -> dict[str, list[str]]:
    """Key → values of a unit file (sections flattened; our keys never repeat across them)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


# ---- systemd-analyze verify ------------------------------------------------------------------


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing: scripts/setup installs it")
@pytest.mark.parametrize("config", CONFIGS)
def test_units_pass_systemd_analyze_verify(config: str, tmp_path: Path) -> None:
    # verify checks that every ExecStart= binary exists: point the prefix at this venv.
    out = write(export("systemd", config, prefix=sys.prefix), tmp_path)
    units = sorted(str(p) for p in (out / "units").iterdir())
    result = run(ANALYZE, "verify", "--man=no", *units)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # not even a warning


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing: scripts/setup installs it")
def test_verify_would_catch_a_broken_set(tmp_path: Path) -> None:
    out = write(export("systemd", "edge", prefix=sys.prefix), tmp_path)
    (out / "units" / "sentinel-edge-denylist.socket").unlink()
    units = sorted(str(p) for p in (out / "units").iterdir())
    result = run(ANALYZE, "verify", "--man=no", *units)  # type: ignore[arg-type]
    assert result.returncode != 0 and "sentinel-edge-denylist.socket" in result.stderr


# ---- a socket-activated agent, started as its units say --------------------------------------


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate missing")
async def activation(
    tmp: Path, listen: Path, socket_unit: dict[str, list[str]], service: dict[str, list[str]]
) -> tuple[trio.socket.SocketType, list[str | None], dict[str, str]]:
    """What systemd would do for a socket unit and its service: a notify socket, the
    systemd-socket-activate command line with the unit's own settings, a clean env."""
    env = [shlex.split(value)[0] for value in service["Environment"]]
    notify_path = tmp / "notify.sock"
    notes = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notes.bind(str(notify_path))
    argv = [
        ACTIVATE,
        f"--listen={listen}",
        f"--fdname={socket_unit['FileDescriptorName'][0]}",
        *(f"--setenv={item}" for item in [*env, f"NOTIFY_SOCKET={notify_path}"]),
        *shlex.split(service["ExecStart"][0]),
    ]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "SENTINEL_"))}
    return notes, argv, clean


async def test_socket_activated_agent_answers_the_agent_protocol(short_tmp: Path) -> None:
    files = export("systemd", "default", prefix=sys.prefix, run_dir=str(short_tmp / "run"))
    socket_unit = unit(files["units/sentinel-default-denylist.socket"])
    service = unit(files["units/sentinel-default-denylist.service"])
    assert service["Type"] == ["notify"]
    assert socket_unit["SocketMode"] == ["0600"]
    listen = Path(socket_unit["ListenStream"][0])
    listen.parent.mkdir(parents=True)  # tmpfiles.d does this on the target
    notes, argv, clean = await activation(short_tmp, listen, socket_unit, service)
    stderr = short_tmp / "agent.stderr"
    with stderr.open("wb") as sink:
        process = await trio.lowlevel.open_process(argv, env=clean, stderr=sink)  # type: ignore[arg-type]
    try:
        with trio.fail_after(DEADLINE):
            await wait_until(listen.exists)
            # The first connection is what makes systemd-socket-activate start the agent.
            async with connect_agent(listen) as conn:
                allowed = await conn.decide(request(1, "/", client_ip="203.0.113.7"))
                assert isinstance(allowed.action, Allow), stderr.read_text()
                seen = (await notes.recv(4096)).decode().split("\n")
                assert "READY=1" in seen  # what Type=notify waits for
                # The unit's Environment= put the agent's side files in the run directory.
                env = [shlex.split(value)[0] for value in service["Environment"]]
                control = Path(dict(e.split("=", 1) for e in env)["SENTINEL_RUN_DIR"])
                reply = await _ask(control / "agents" / "denylist.ctl", "203.0.113.7")
                assert reply["ok"], reply
                blocked = await conn.decide(request(2, "/", client_ip="203.0.113.7"))
                assert isinstance(blocked.action, Block) and blocked.action.status == 403
                await conn.complete(RequestComplete(1, status=200))
                await conn.complete(RequestComplete(2, status=403))
    finally:
        if process.returncode is None:
            process.terminate()
        with trio.move_on_after(DEADLINE) as cleanup:
            cleanup.shield = True
            await process.wait()
        notes.close()
    assert process.returncode == 0, stderr.read_text()  # SIGTERM drains and exits 0


# ---- the detector, serving the event hub on its socket unit ---------------------------------


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate missing")
async def test_socket_activated_detector_serves_the_event_hub(short_tmp: Path) -> None:
    config_dir, run_dir = short_tmp / "etc", short_tmp / "run"
    files = export(
        "systemd", "default", prefix=sys.prefix, run_dir=str(run_dir), config_dir=str(config_dir)
    )
    socket_unit = unit(files["units/sentinel-default-events.socket"])
    service = unit(files["units/sentinel-default-detector.service"])
    listen = Path(socket_unit["ListenStream"][0])
    assert listen == run_dir / "events.sock" and service["Type"] == ["notify"]
    assert socket_unit["SocketMode"] == ["0660"] and socket_unit["SocketGroup"] == ["sentinel"]
    for producer in ("proxy", "probe", "denylist"):
        needs = unit(files[f"units/sentinel-default-{producer}.service"])
        assert "sentinel-default-events.socket" in needs["Requires"][0].split(), producer
        assert f'"SENTINEL_EVENTS_SOCKET={listen}"' in needs["Environment"], producer
    probe = unit(files["units/sentinel-default-probe.service"])
    assert probe["SupplementaryGroups"] == ["sentinel"]  # root without CAP_DAC_OVERRIDE
    # Install the config as INSTALL.md says, with the real default rules (the export tests
    # ship stand-ins).
    for path, text in files.items():
        if path.startswith("config/"):
            target = config_dir / path.removeprefix("config/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    shutil.rmtree(config_dir / "configs" / "rules")
    shutil.copytree(RULES_DIR, config_dir / "configs" / "rules")
    listen.parent.mkdir(parents=True)  # tmpfiles.d does this on the target
    notes, argv, clean = await activation(short_tmp, listen, socket_unit, service)
    stderr = short_tmp / "detector.stderr"
    alerts = run_dir / "detector" / "alerts.jsonl"  # the default alert file
    with stderr.open("wb") as sink:
        process = await trio.lowlevel.open_process(argv, env=clean, stderr=sink)  # type: ignore[arg-type]
    try:
        with trio.fail_after(DEADLINE):
            await wait_until(listen.exists)
            # The probe's first connection is what makes systemd start the detector.
            read = ev.OpenEvent(time=1.0, pid=4242, comm="cat", path="/etc/shadow")
            read.reasons, read.result = ["sensitive"], 3
            stream = await trio.open_unix_socket(str(listen))
            async with stream:
                await stream.send_all(ev.EVENT_ENCODER.encode(read) + b"\n")
            seen = (await notes.recv(4096)).decode().split("\n")
            assert "READY=1" in seen  # what Type=notify waits for
            await wait_until(alerts.exists)
            await wait_until(lambda: alerts.read_text().endswith("\n"))
        (alert,) = [json.loads(line) for line in alerts.read_text().splitlines()]
        assert alert["rule"] == "sensitive_file_read", alert
    finally:
        if process.returncode is None:
            process.terminate()
        with trio.move_on_after(DEADLINE) as cleanup:
            cleanup.shield = True
            await process.wait()
        notes.close()
    log = stderr.read_text()
    assert process.returncode == 0, log
    assert "(socket-activated)" in log  # the inherited `events` socket, not --serve-events
    assert listen.exists()  # the socket unit's file: left for systemd (RemoveOnStop=)


async def _ask(path: Path, value: str) -> dict[str, object]:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        line = {"id": 1, "op": "add", "kind": "ip", "value": value, "ttl": None, "reason": "test"}
        await stream.send_all(json.dumps(line).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some(65536)
            assert chunk, "the agent closed the control connection"
            data += chunk
    reply: dict[str, object] = json.loads(data)
    return reply


# ---- what the units say ----------------------------------------------------------------------


def test_restart_policy_maps_to_restart_and_start_limits() -> None:
    files = export("systemd", "edge")
    app = unit(files["units/sentinel-edge-app.service"])
    assert app["Restart"] == ["always"] and app["RestartSec"] == ["1s"]
    assert app["StartLimitIntervalSec"] == ["300s"] and app["StartLimitBurst"] == ["4"]
    assert app["WatchdogSec"] == ["30s"] and app["Type"] == ["exec"]
    assert "RestartSteps" not in app  # systemd 252 has no exponential backoff
    worker = unit(files["units/sentinel-edge-worker.service"])
    assert worker["Restart"] == ["no"] and "StartLimitBurst" not in worker
    assert worker["KillSignal"] == ["SIGINT"] and worker["TimeoutStopSec"] == ["3s"]
    newer = unit(export("systemd", "edge", systemd_version=254)["units/sentinel-edge-app.service"])
    assert newer["RestartSteps"] == ["6"] and newer["RestartMaxDelaySec"] == ["60s"]


def test_dependencies_go_through_agent_sockets() -> None:
    files = export("systemd", "edge")
    proxy = unit(files["units/sentinel-edge-proxy.service"])
    needs = proxy["Requires"][0].split()
    assert "sentinel-edge-denylist.socket" in needs  # socket-activated: its socket
    assert "sentinel-edge-custom.service" in needs  # binds its own socket: the service
    assert "sentinel-edge-app.service" in needs and proxy["After"] == proxy["Requires"]
    assert "units/sentinel-edge-custom.socket" not in files
    target = unit(files["units/sentinel-edge.target"])
    assert "sentinel-edge-proxy.service" in target["Wants"][0].split()


def test_secrets_are_never_written_and_come_from_env_files() -> None:
    files = export("systemd", "edge")
    assert not any("s3cr3t" in text for text in files.values())
    app = unit(files["units/sentinel-edge-app.service"])
    assert app["EnvironmentFile"] == ["/etc/sentinel-stack/edge/env/app.env"]
    inline = [shlex.split(v)[0].split("=")[0] for v in app["Environment"]]
    assert "APP_MODE" in inline and "API_TOKEN" not in inline and "DATABASE_URL" not in inline
    example = files["config/env/app.env.example"]
    assert (
        "API_TOKEN=\n" in example and "DATABASE_URL=\n" in example and "#LOG_LEVEL=info" in example
    )
    proxy = unit(files["units/sentinel-edge-proxy.service"])  # it interpolates the config
    assert proxy["EnvironmentFile"] == ["/etc/sentinel-stack/edge/env/proxy.env"]


def test_quoting_keeps_literal_percent_and_dollar_and_expands_supplied_variables() -> None:
    files = export("systemd", "edge")
    worker = unit(files["units/sentinel-edge-worker.service"])
    assert worker["ExecStart"] == [
        '/bin/sh -c "echo $$HOME ${QUEUE_TOKEN} 50%%; exec sleep infinity"'
    ]
    app = unit(files["units/sentinel-edge-app.service"])
    assert '"DISCOUNT=100%% off, \\"quoted\\""' in app["Environment"]


def test_hardening_and_capabilities_only_where_needed() -> None:
    files = export("systemd", "edge")
    for name in ("app", "worker", "denylist", "custom", "proxy", "probe"):
        service = unit(files[f"units/sentinel-edge-{name}.service"])
        for key, value in (
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("ReadWritePaths", "/run/sentinel-stack/edge"),
        ):
            assert service[key] == [value], (name, key)
    probe = unit(files["units/sentinel-edge-probe.service"])
    assert "User" not in probe  # root, bounded
    assert probe["CapabilityBoundingSet"][0].split()[:2] == ["CAP_BPF", "CAP_PERFMON"]
    assert probe["LimitMEMLOCK"] == ["infinity"]
    cgroup = "/sys/fs/cgroup/sentinel.slice/sentinel-edge.slice"
    assert f'"SENTINEL_STACK_CGROUP={cgroup}"' in probe["Environment"]
    proxy = unit(files["units/sentinel-edge-proxy.service"])  # listens on port 80
    assert proxy["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    app = unit(files["units/sentinel-edge-app.service"])
    assert app["CapabilityBoundingSet"] == [""] and app["User"] == ["sentinel"]
    socket_unit = unit(files["units/sentinel-edge-denylist.socket"])
    assert socket_unit["SocketMode"] == ["0600"] and socket_unit["SocketUser"] == ["sentinel"]


def test_readiness_other_than_notify_runs_the_healthcheck_after_start() -> None:
    files = export("systemd", "edge")
    app = unit(files["units/sentinel-edge-app.service"])
    assert app["ExecStartPost"] == [
        "/opt/sentinel-stack/bin/python -m sentinel_stack.export.healthcheck --wait 15 "
        "tcp 127.0.0.1:8081"
    ]
    assert "ExecStartPost" not in unit(files["units/sentinel-edge-denylist.service"])


def test_slice_cgroup_follows_dashes() -> None:
    assert slice_cgroup("sentinel-my-stack.slice") == (
        "sentinel.slice/sentinel-my.slice/sentinel-my-stack.slice"
    )
