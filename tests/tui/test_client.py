"""The asyncio control client and the feed, against a small fake launcher on a Unix socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sentinel_stack.tui.client import ControlConnection, ControlFailed, NoStack, StackControl
from sentinel_stack.tui.feed import ControlFeed, guarded
from sentinel_stack.tui.state import TuiState
from sentinel_stack.tui.wire import ACCESS
from tests.tui.fakes import access, alert, status


class FakeLauncher:
    """Answers the control API the way the launcher does, from canned data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None
        self.down = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FakeLauncher:
        self.server = await asyncio.start_unix_server(self._client, str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang_up()
        assert self.server is not None
        await self.server.wait_closed()

    def hang_up(self) -> None:
        """What the launcher does once it has stopped: every connection closes."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while line := await reader.readline():
                request = json.loads(line)
                self.requests.append(request)
                await self._answer(request, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        rid, op = request["id"], request["op"]
        if op == "status":
            result = msgspec.to_builtins(status(by_kind={"kernel.exec": 5}))
            await self._send(writer, {"id": rid, "ok": True, "result": result})
        elif op == "restart":
            if request["name"] == "nope":
                error = {"code": "unknown", "message": "no child named `nope` in this stack"}
                await self._send(writer, {"id": rid, "ok": False, "error": error})
            else:
                result = {"child": request["name"], "state": "running"}
                await self._send(writer, {"id": rid, "ok": True, "result": result})
        elif op == "logs":
            lines = [{"child": request["name"], "stream": "stdout", "time": 1.0, "line": "old"}]
            await self._send(writer, {"id": rid, "ok": True, "result": lines})
        elif op == "subscribe":
            await self._stream(rid, request["topics"], writer)
        elif op == "down":
            await self._send(writer, {"id": rid, "ok": True, "result": {"stopping": True}})
            self.down.set()
            raise ConnectionError  # the launcher hangs up once stopped

    async def _stream(self, rid: int, topics: list[str], writer: asyncio.StreamWriter) -> None:
        if "state" in topics:
            events: list[Any] = [
                {
                    "type": "state",
                    "child": "waf",
                    "state": "backoff",
                    "previous": "running",
                    "reason": "exit 1",
                    "pid": None,
                    "time": 1.0,
                },
                {"type": "log", "child": "demo", "stream": "stdout", "time": 2.0, "line": "hi"},
                {"type": "stack", "message": "all ready", "level": "info", "time": 3.0},
            ]
        elif "events:access" in topics:
            events = [msgspec.to_builtins(access(i)) for i in range(300)]
        else:
            events = [alert(1, "high"), {"kind": "probe.health", "backend": "procfs"}]
        data = b"".join(json.dumps({"id": rid, "event": e}).encode() + b"\n" for e in events)
        writer.write(data[:1000])  # a line split across reads
        await writer.drain()
        writer.write(data[1000:])
        await writer.drain()
        await self.down.wait()
        raise ConnectionError


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_request_stream_errors_and_no_stack(short_dir):
    path = short_dir / "control.sock"

    async def scenario() -> None:
        with pytest.raises(NoStack):
            await ControlConnection.open(path)
        async with FakeLauncher(path) as launcher:
            control = StackControl(path)
            assert (await control.call("restart", name="web"))["state"] == "running"
            with pytest.raises(ControlFailed) as failed:
                await control.call("restart", name="nope")
            assert failed.value.code == "unknown"
            assert await guarded(control.call("restart", name="nope")) == (
                False,
                "no child named `nope` in this stack",
            )
            assert await guarded(control.call("restart", name="web")) == (True, "web: running")
            async with await ControlConnection.open(path) as connection:
                got = []
                async for batch in connection.stream("subscribe", ACCESS, topics=["events:access"]):
                    got.extend(batch)
                    if len(got) >= 300:
                        launcher.down.set()
                assert [r.request_id for r in got] == [f"req-{i}" for i in range(300)]
            launcher.down.clear()
            await control.down()  # returns once the launcher hangs up
            assert launcher.requests[-1]["op"] == "down"
        assert await guarded(control.call("status")) == (
            False,
            f"the launcher is not answering ({path})",
        )

    run(scenario())


def test_feed_fills_the_state_until_the_launcher_hangs_up(short_dir):
    path = short_dir / "control.sock"
    state = TuiState()
    gone: list[str] = []

    async def scenario() -> None:
        async with FakeLauncher(path) as launcher:
            feed = ControlFeed(path)
            task = asyncio.create_task(feed.run(state, lambda: 100.0, gone.append))
            while state.traffic.total < 300 or not state.alerts.alerts or not state.notices:
                await asyncio.sleep(0.01)
            await feed.backfill_logs(state, "demo")
            await feed.backfill_logs(state, "demo")  # once per child
            await StackControl(path).down()
            launcher.hang_up()
            await task

    run(scenario())
    assert gone == ["the stack has stopped"]
    assert state.processes.gone and state.processes.health().word == "stopped"
    assert state.processes.children["waf"].state in ("backoff", "running")
    assert [e.line for e in state.logs.lines("demo")] == ["old", "hi"]
    assert state.alerts.counts["high"] == 1
    assert state.probe.health is not None and state.probe.health.backend == "procfs"
    assert sum(1 for r in state.notices if r.message == "all ready") == 1
