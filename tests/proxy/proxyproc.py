"""Run `python -m sentinel_stack.proxy` as its own program, with what a launcher would give it:
a NOTIFY_SOCKET whose datagrams are kept, and an event hub socket whose lines are kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.proxy.e2e import free_port

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = str(ROOT / "tests" / "fakeupstream.py")


@dataclass
class RunningProxy:
    process: trio.Process
    dir: Path
    port: int
    admin_port: int
    notifications: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notified: trio.Event = field(default_factory=trio.Event)  # replaced on each datagram
    recorded: trio.Event = field(default_factory=trio.Event)  # replaced on each batch

    async def wait_records(self, count: int, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while len(self.records) < count:
                await self.recorded.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log(self) -> str:
        return (self.dir / "proxy.log").read_text(errors="replace")

    async def status(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.admin}/status")
            return dict(response.json())

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{self.admin}/metrics")).text


def proxy_config(port: int, admin_port: int, upstream: str, **proxy: object) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in proxy.items())
    return (
        '[stack]\nname = "proxyproc"\n\n'
        f'[proxy]\nlisten = ["127.0.0.1:{port}"]\nadmin = "127.0.0.1:{admin_port}"\n'
        f"agents = []\n{extra}\n"
        f'[upstreams.app]\ntargets = ["{upstream}"]\nhealth_check = {{ kind = "none" }}\n\n'
        '[[routes]]\nid = "all"\npath_prefix = "/"\nupstream = "app"\n'
    )


async def wait_port(port: int, timeout: float = 15.0) -> None:
    """Deadline-bounded: a process we started has no other way to say it listens."""
    with trio.fail_after(timeout):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
            else:
                await stream.aclose()
                return


@asynccontextmanager
async def fake_upstream(directory: Path, name: str = "up") -> AsyncIterator[str]:
    port = free_port()
    with (directory / f"{name}.log").open("wb") as log:
        process = await trio.lowlevel.open_process(
            [sys.executable, UPSTREAM, "--port", str(port), "--name", name],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await wait_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        await process.wait()


async def _collect_notify(sock: trio.socket.SocketType, proxy: RunningProxy) -> None:
    while True:
        data = await sock.recv(4096)
        proxy.notifications.append(data.decode())
        proxy.notified.set()
        proxy.notified = trio.Event()


async def _hub(listener: trio.SocketListener, proxy: RunningProxy) -> None:
    async def client(stream: trio.SocketStream) -> None:
        buffer = b""
        async for data in stream:
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            proxy.records.extend(json.loads(line) for line in lines if line)
            proxy.recorded.set()
            proxy.recorded = trio.Event()

    async with trio.open_nursery() as nursery:
        while True:
            nursery.start_soon(client, await listener.accept())


@asynccontextmanager
async def run_proxy(
    directory: Path, config: str, port: int, admin_port: int, env: Mapping[str, str] = {}
) -> AsyncIterator[RunningProxy]:
    """The proxy, started and READY=1; SIGTERM (then SIGKILL after 20 s) on the way out."""
    path = directory / "stack.toml"
    path.write_text(config)
    notify_path, hub_path = directory / "notify.sock", directory / "events.sock"
    notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notify.bind(str(notify_path))
    hub = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await hub.bind(str(hub_path))
    hub.listen(16)
    environ = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "SENTINEL_EVENTS_SOCKET": str(hub_path),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    with (directory / "proxy.log").open("wb") as log:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "sentinel_stack.proxy", "-c", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    proxy = RunningProxy(process, directory, port, admin_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_collect_notify, notify, proxy)
        nursery.start_soon(_hub, trio.SocketListener(hub), proxy)
        try:
            with trio.fail_after(30):
                while not any("READY=1" in n for n in proxy.notifications):
                    if process.poll() is not None:
                        raise AssertionError(f"the proxy exited:\n{proxy.log()}")
                    with trio.move_on_after(0.2):  # also notice an early exit
                        await proxy.notified.wait()
            yield proxy
        finally:
            with trio.CancelScope(shield=True):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    with trio.move_on_after(20):
                        await process.wait()
                    if process.poll() is None:
                        process.kill()
                        await process.wait()
            nursery.cancel_scope.cancel()
            notify.close()
            hub.close()
