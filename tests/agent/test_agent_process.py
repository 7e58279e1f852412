"""The example agent as a real process: flags, socket activation, sd_notify, SIGTERM drain."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from agent_helpers import short_tmpdir

from sentinel_stack.agent import connect_agent
from sentinel_stack.protocol import (
    Block,
    HeaderOps,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
)

DEADLINE = 15  # seconds; generous for a loaded CI machine, never waited out on success
AGENT = [sys.executable, "-m", "sentinel_agents.example", "--log-level", "debug"]


class Notifications:
    """The NOTIFY_SOCKET end the launcher would hold."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.seen: list[str] = []

    async def wait_for(self, field: str, process: trio.Process, stderr: Path) -> None:
        """Wait for ``field``; fail at once, with the agent's log, if the agent exits first."""
        async with trio.open_nursery() as nursery:

            async def watch_exit() -> None:
                status = await process.wait()
                pytest.fail(f"agent exited ({status}) before {field}:\n{stderr.read_text()}")

            nursery.start_soon(watch_exit)
            while field not in self.seen:
                data = await self.sock.recv(4096)
                self.seen.extend(data.decode().split("\n"))
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def notify_socket(path: Path) -> AsyncIterator[Notifications]:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(str(path))
    with sock:
        yield Notifications(sock)


def request(cid: int, path: str, method: str = "GET", **headers: str) -> RequestHeaders:
    return RequestHeaders(
        correlation_id=cid,
        request_id=f"r{cid}",
        method=method,
        path=path,
        headers={name.replace("_", "-"): [value] for name, value in headers.items()},
    )


def log_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("how", ["flag", "environment"])
async def test_agent_binding_its_own_socket_serves_reloads_and_stops_cleanly(how: str) -> None:
    async with short_tmpdir() as tmp, notify_socket(tmp / "notify.sock") as notes:
        sock_path = tmp / "example.sock"
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp / "notify.sock")}
        argv = [*AGENT, "--socket", str(sock_path)] if how == "flag" else AGENT
        if how == "environment":
            env["SENTINEL_AGENT_SOCKET"] = str(sock_path)
        with (tmp / "stderr").open("wb") as stderr:
            process = await trio.lowlevel.open_process(argv, env=env, stderr=stderr)
        with trio.fail_after(DEADLINE):
            await notes.wait_for("READY=1", process, tmp / "stderr")
            async with connect_agent(sock_path) as conn:
                assert (conn.agent.name, conn.agent.agent_version) == ("example", "0.1.0")
                allowed = await conn.decide(request(1, "/shop"))
                assert allowed.request_headers == HeaderOps(
                    add=(("x-sentinel-example", "checked"),)
                )
                blocked = await conn.decide(request(2, "/admin/users"))
                assert isinstance(blocked.action, Block) and blocked.audit is not None
                assert blocked.audit.rule_ids == ("EX-1",)
                result = await conn.configure({"blocked_prefixes": ["/private"]}, revision=2)
                assert result.ok, result.error
                assert not isinstance((await conn.decide(request(3, "/admin"))).action, Block)
                assert isinstance((await conn.decide(request(4, "/private/x"))).action, Block)
                rejected = await conn.configure({"blocked_prefix": ["/typo"]}, revision=3)
                assert not rejected.ok and "blocked_prefix" in rejected.error
            process.send_signal(signal.SIGTERM)
            await notes.wait_for("STOPPING=1", process, tmp / "stderr")
            assert await process.wait() == 0
        assert not sock_path.exists()
        messages = [line["msg"] for line in log_lines(tmp / "stderr")]
        assert "ready" in messages and "configuration rejected" in messages


async def test_inherited_socket_and_sigterm_drain_of_a_streaming_request() -> None:
    async with short_tmpdir() as tmp, notify_socket(tmp / "notify.sock") as notes:
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(str(tmp / "agents-example.sock"))
        listening.listen()
        # The socket goes in as stdin (POSIX sh only redirects single-digit fds); the shell
        # moves it to fd 3 and exports its own pid, which exec keeps, as systemd would.
        script = 'exec 3<&0 0</dev/null; export LISTEN_PID=$$; exec "$@"'
        env = {
            **os.environ,
            "LISTEN_FDS": "1",
            "LISTEN_FDNAMES": "example",
            "NOTIFY_SOCKET": str(tmp / "notify.sock"),
        }
        with (tmp / "stderr").open("wb") as stderr:
            process = await trio.lowlevel.open_process(
                ["/bin/sh", "-c", script, "sh", *AGENT],
                env=env,
                stdin=listening.fileno(),
                stderr=stderr,
            )
        listening.close()
        with trio.fail_after(DEADLINE):
            await notes.wait_for("READY=1", process, tmp / "stderr")
            async with connect_agent(tmp / "agents-example.sock") as conn:
                post = request(1, "/comments", "POST", content_length="64")
                assert not (await conn.decide(post)).is_final  # needs_more: in flight
                process.send_signal(signal.SIGTERM)
                await conn.wait_draining()
                chunk = RequestBodyChunk(1, data=b"hello <SCRIPT>alert(1)", last=True)
                verdict = await conn.decide(chunk)
                assert isinstance(verdict.action, Block)
                assert verdict.audit is not None and verdict.audit.rule_ids == ("EX-2",)
                await conn.complete(RequestComplete(1, status=403))
                assert conn.closed
            assert await process.wait() == 0
        ready = next(line for line in log_lines(tmp / "stderr") if line["msg"] == "ready")
        assert ready["socket"] == "inherited fd (example)"


async def test_agent_without_a_socket_says_what_to_do() -> None:
    wiring = ("LISTEN_", "NOTIFY_", "SENTINEL_AGENT_SOCKET")
    env = {k: v for k, v in os.environ.items() if not k.startswith(wiring)}
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            AGENT, env=env, capture_stderr=True, check=False, stdin=subprocess.DEVNULL
        )
    assert result.returncode == 2
    assert b"pass --socket PATH" in result.stderr


@pytest.mark.parametrize("argv", [["--help"]])
async def test_help_lists_the_flags(argv: list[str]) -> None:
    with trio.fail_after(DEADLINE):
        result = await trio.run_process([*AGENT, *argv], capture_stdout=True)
    for flag in (b"--socket", b"--name", b"--log-level", b"--drain-timeout"):
        assert flag in result.stdout


async def test_the_documented_agent_runs_as_written() -> None:
    guide = Path(__file__).parents[2] / "docs" / "writing-agents.md"
    source = guide.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    async with short_tmpdir() as tmp, notify_socket(tmp / "notify.sock") as notes:
        (tmp / "polite.py").write_text(source)
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp / "notify.sock")}
        command = [sys.executable, str(tmp / "polite.py"), "--socket", str(tmp / "polite.sock")]
        with (tmp / "stderr").open("wb") as stderr:
            process = await trio.lowlevel.open_process(command, env=env, stderr=stderr)
        with trio.fail_after(DEADLINE):
            await notes.wait_for("READY=1", process, tmp / "stderr")
            async with connect_agent(tmp / "polite.sock") as conn:
                assert conn.agent.name == "polite"
                anonymous = await conn.decide(request(1, "/"))
                assert isinstance(anonymous.action, Block)
                assert not isinstance(
                    (await conn.decide(request(2, "/", user_agent="curl"))).action, Block
                )
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
