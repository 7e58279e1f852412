"""Access records to the event hub: batched, bounded, never in a request's way.

`AccessLog.record` never waits: when the queue is full (the hub is slow or gone) the
record is dropped and counted. A background task writes batches as JSON lines and
reconnects to the hub with backoff.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import msgspec
import trio

if TYPE_CHECKING:
    from sentinel_stack.proxy.pipeline import PipelineResult

BATCH = 256
FLUSH_AFTER = 0.05


class AgentCall(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one agent said about one request, and how long it took."""

    agent: str
    action: str
    latency_ms: float
    error: str = ""


class AccessRecord(
    msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True, tag="access", tag_field="kind"
):
    # `kind` is a tag, not a defaulted field: omit_defaults would drop it, and the event
    # hub refuses records without a kind.
    time: float
    source: str
    request_id: str
    method: str
    path: str
    status: int
    latency_ms: float
    route: str = ""
    upstream: str = ""
    target: str = ""
    query: str = ""
    host: str = ""
    protocol: str = ""
    # The client as the agents saw it: X-Forwarded-For resolved through `trusted_proxies`;
    # `peer_ip` is the socket's peer, present only when it differs (a trusted proxy).
    client_ip: str = ""
    client_port: int = 0
    peer_ip: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    user_agent: str = ""
    decided_by: str = ""
    agents: list[AgentCall] = []
    tags: list[str] = []
    rule_ids: list[str] = []
    error: str = ""
    worker: int = 0  # which worker process answered (1..N), 0 when the proxy runs alone


class RequestRecord:
    """What one request did, filled in as it goes; becomes an `AccessRecord`."""

    def __init__(self, method: str, path: str, query: str, client: tuple[str, int]) -> None:
        self.time = time.time()
        self.mono_start = trio.current_time()
        self.method, self.path, self.query = method, path, query
        self.client = (client[0] or "", client[1] or 0)
        self.client_ip = self.client[0]  # after X-Forwarded-For from a trusted proxy
        self.protocol = self.host = self.route = self.upstream = self.target = ""
        self.request_id = self.decided_by = self.error = ""
        self.status = 0
        self.latency = 0.0
        self.bytes_in = self.bytes_out = 0
        self.started_response = False
        self.agents: list[AgentCall] = []
        self.tags: list[str] = []
        self.rule_ids: list[str] = []

    def note_agents(self, result: PipelineResult) -> None:
        for c in result.consultations:
            action = type(c.decision.action).__name__.lower() if c.decision else "none"
            self.agents.append(AgentCall(c.agent, action, round(c.latency * 1000, 3), c.error))
        self.tags = list(result.merged.tags)
        self.rule_ids = list(result.merged.rule_ids)

    def to_access(self, source: str, worker: int) -> AccessRecord:
        return AccessRecord(
            time=self.time,
            source=source,
            worker=worker,
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            query=self.query,
            status=self.status,
            latency_ms=round(self.latency * 1000, 3),
            route=self.route,
            upstream=self.upstream,
            target=self.target,
            host=self.host,
            protocol=self.protocol,
            client_ip=self.client_ip,
            client_port=self.client[1],
            peer_ip=self.client[0] if self.client_ip != self.client[0] else "",
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            decided_by=self.decided_by,
            agents=self.agents,
            tags=self.tags,
            rule_ids=self.rule_ids,
            error=self.error,
        )


class AccessLog:
    def __init__(self, socket_path: str | None, source: str, capacity: int = 10_000) -> None:
        self.socket_path = socket_path
        self.source = source
        self.dropped = 0
        self.sent = 0
        self._send, self._receive = trio.open_memory_channel[AccessRecord](capacity)
        self._encoder = msgspec.json.Encoder()

    def record(self, record: AccessRecord) -> None:
        if self.socket_path is None:
            return
        try:
            self._send.send_nowait(record)
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        """Ship records until cancelled; reconnects forever."""
        if self.socket_path is None:
            return
        backoff = 0.1
        while True:
            try:
                stream = await trio.open_unix_socket(self.socket_path)
            except OSError:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            try:
                async with stream:
                    await self._pump(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                continue

    async def _pump(self, stream: trio.abc.Stream) -> None:
        while True:
            batch = [await self._receive.receive()]
            with trio.move_on_after(FLUSH_AFTER):
                while len(batch) < BATCH:
                    batch.append(await self._receive.receive())
            data = b"".join(self._encoder.encode(r) + b"\n" for r in batch)
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.dropped += len(batch)
                raise
            self.sent += len(batch)


def source_name() -> str:
    return os.environ.get("SENTINEL_CHILD_NAME", "proxy")


def now() -> float:
    return time.time()
