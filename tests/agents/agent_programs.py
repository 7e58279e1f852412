"""Run a bundled agent as a real process on a Unix socket and talk to it as the proxy does.

Imported as ``tests.agents.agent_programs`` by the agent tests in tests/agents/<name>/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from sentinel_stack.protocol import RequestHeaders

DEADLINE = 30  # seconds; generous for a loaded machine, never waited out on success
REPO = Path(__file__).resolve().parents[2]
FAST_HEALTH = ("--health-interval", "0.2")  # so `next_health` does not wait 10 s


@contextmanager
def short_tmp() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sag-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class AgentProcess:
    process: trio.Process
    socket: Path
    stderr: Path
    notes: trio.socket.SocketType
    seen: list[str] = field(default_factory=list)

    def log(self) -> list[dict[str, Any]]:
        """The agent's JSON log lines so far."""
        text = self.stderr.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def messages(self) -> list[str]:
        return [str(line.get("msg")) for line in self.log()]

    async def wait_for_note(self, field_: str) -> None:
        """Wait for an sd_notify field; fail at once, with the log, if the agent exits."""
        async with trio.open_nursery() as nursery:

            async def watch_exit() -> None:
                status = await self.process.wait()
                pytest.fail(f"agent exited ({status}) before {field_}:\n{self.stderr.read_text()}")

            nursery.start_soon(watch_exit)
            while field_ not in self.seen:
                data = await self.notes.recv(4096)
                self.seen.extend(data.decode().split("\n"))
            nursery.cancel_scope.cancel()

    async def wait_for_log(self, message: str, count: int = 1) -> None:
        """A deadline-bounded wait for the ``count``-th log line saying ``message``."""
        await wait_until(lambda: self.messages().count(message) >= count)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.process.wait()


@asynccontextmanager
async def agent_process(
    module: str, tmp: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[AgentProcess]:
    """``python -m <module> --socket <tmp>/agent.sock ARGS``, ready (READY=1) when yielded."""
    sock_path = tmp / "agent.sock"
    notify_path = tmp / "notify.sock"
    notes = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notes.bind(str(notify_path))
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "SENTINEL_"))
    }
    environment.update(NOTIFY_SOCKET=str(notify_path), **(env or {}))
    argv = [sys.executable, "-m", module, "--socket", str(sock_path), "--log-level", "debug"]
    stderr = tmp / f"{module.rsplit('.', 1)[-1]}.stderr"
    with stderr.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            [*argv, *args], env=environment, stderr=sink, stdin=subprocess.DEVNULL
        )
    agent = AgentProcess(process, sock_path, stderr, notes)
    try:
        with trio.fail_after(DEADLINE):
            await agent.wait_for_note("READY=1")
        yield agent
    finally:
        with trio.move_on_after(DEADLINE) as cleanup:
            cleanup.shield = True
            await agent.stop()
        if process.returncode is None:
            process.kill()
        notes.close()
        notify_path.unlink(missing_ok=True)


def request(
    cid: int,
    path: str = "/",
    *,
    method: str = "GET",
    query: str = "",
    client_ip: str = "198.51.100.20",
    route: str = "",
    **headers: str,
) -> RequestHeaders:
    """A request_headers event; keyword headers use underscores for dashes."""
    fields = {"host": ["shop.example"], "user-agent": ["Mozilla/5.0 (X11; Linux x86_64)"]}
    for name, value in headers.items():
        fields[name.replace("_", "-")] = [value]
    return RequestHeaders(
        correlation_id=cid,
        request_id=f"r{cid}",
        method=method,
        path=path,
        query=query,
        headers=fields,
        client_ip=client_ip,
        client_port=40000 + cid,
        route_id=route,
    )


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = DEADLINE
) -> None:
    """A deadline-bounded wait on a condition that has no event to await (another process)."""
    with trio.fail_after(timeout):
        while True:
            outcome = predicate()
            if not isinstance(outcome, bool):
                outcome = await outcome
            if outcome:
                return
            await trio.sleep(0.05)


async def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """``sentinel-stack ARGS`` as a separate process, as a person would type it."""
    with trio.fail_after(DEADLINE):
        return await trio.run_process(
            [sys.executable, "-m", "sentinel_stack", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=cwd,
        )


async def proxy_linked(client: Any, admin: str, *agents: str) -> None:
    """Wait until the proxy's admin /status shows a live link to every agent named."""

    async def linked() -> bool:
        status = (await client.get(f"{admin}/status")).json()
        return all(status["agents"].get(name, {}).get("connected") for name in agents)

    await wait_until(linked)
