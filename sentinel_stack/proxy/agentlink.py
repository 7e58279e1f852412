"""The proxy's link to one agent: a persistent multiplexed connection, kept up forever.

A late-starting or restarted agent is reconnected with backoff; a draining one (GoAway)
is replaced at once while its in-flight requests finish on the old connection. Every
consultation is bounded by the agent's timeout and concurrency limit and guarded by a
circuit breaker; what goes wrong comes back as a `Consultation` with an error kind, for
the pipeline to apply the failure mode.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import trio

from sentinel_stack import __version__
from sentinel_stack.agent.client import AgentConnection, connect_agent
from sentinel_stack.agent.errors import AgentError
from sentinel_stack.protocol import Decision, Hello, ProtocolError, RequestComplete
from sentinel_stack.protocol.messages import DecisionEvent
from sentinel_stack.proxy.breaker import BreakerPolicy, CircuitBreaker

RECONNECT_INITIAL = 0.05
RECONNECT_MAX = 2.0
HELLO = Hello(name="sentinel-proxy", version=__version__)

ErrorKind = Literal["", "unavailable", "breaker_open", "timeout", "error", "overloaded"]


@dataclass(frozen=True)
class AgentSettings:
    name: str
    socket: Path
    timeout: float = 0.25
    failure_mode: Literal["open", "closed"] = "open"
    max_concurrency: int = 256
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    config: Mapping[str, Any] = field(default_factory=dict)
    config_revision: int = 0


@dataclass(frozen=True)
class Consultation:
    """One agent's answer to one event, or why there is none."""

    agent: str
    decision: Decision | None
    error: ErrorKind
    latency: float
    connection: AgentConnection | None = None


class AgentLink:
    def __init__(self, settings: AgentSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.breaker = CircuitBreaker(settings.breaker)
        self.connection: AgentConnection | None = None
        self.connects = 0
        self.last_error = ""
        self.config_error = ""
        self._limiter = trio.CapacityLimiter(settings.max_concurrency)
        self._rng = rng or random.Random()
        self._scope = trio.CancelScope()

    async def run(self) -> None:
        """`maintain` until `cancel` (the agent left the config) or the proxy stops."""
        with self._scope:
            await self.maintain()
        self.connection = None

    def cancel(self) -> None:
        self._scope.cancel()

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def connected(self) -> bool:
        conn = self.connection
        return conn is not None and not conn.closed and not conn.draining

    async def maintain(self) -> None:
        """Keep a connection up until cancelled."""
        backoff = RECONNECT_INITIAL
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    conn: AgentConnection = await nursery.start(self._hold)
                except (AgentError, ProtocolError, OSError) as error:
                    self.last_error = str(error)
                    await trio.sleep(backoff * (0.5 + self._rng.random()))
                    backoff = min(backoff * 2, RECONNECT_MAX)
                    continue
                backoff = RECONNECT_INITIAL
                self.connects += 1
                self.connection = conn
                async with trio.open_nursery() as watch:
                    for wait in (conn.wait_draining, conn.wait_closed):
                        watch.start_soon(_then_cancel, wait, watch.cancel_scope)
                if self.connection is conn:
                    self.connection = None
                self.last_error = "agent is draining" if conn.draining else "connection lost"

    async def _hold(self, *, task_status: trio.TaskStatus[AgentConnection]) -> None:
        # The connection lives in its own task so that a draining one can finish its
        # in-flight requests while `maintain` opens the replacement.
        async with connect_agent(self.settings.socket, HELLO) as conn:
            if self.settings.config:
                # `[agents.NAME.config]` goes to the agent before it sees any request.
                result = await conn.configure(
                    dict(self.settings.config), self.settings.config_revision
                )
                self.config_error = "" if result.ok else result.error
            task_status.started(conn)
            await conn.wait_closed()

    async def consult(self, event: DecisionEvent) -> Consultation:
        started = trio.current_time()
        conn = self.connection
        if conn is None or conn.closed or conn.draining:
            return Consultation(self.name, None, "unavailable", 0.0)
        if not self.breaker.allow(started):
            return Consultation(self.name, None, "breaker_open", 0.0)
        decision: Decision | None = None
        error: ErrorKind = ""
        with trio.move_on_after(self.settings.timeout):
            try:
                async with self._limiter:
                    decision = await conn.decide(event)
            except AgentError:
                error = "error"
        if decision is None and not error:
            error = "timeout"
        ended = trio.current_time()
        self.breaker.record(decision is not None, ended)
        return Consultation(self.name, decision, error, ended - started, conn)

    async def complete(self, consultation: Consultation, complete: RequestComplete) -> None:
        """Tell the agent how the request it judged ended (required to free its slot)."""
        conn = consultation.connection
        if conn is None or conn.closed:
            return
        with contextlib.suppress(AgentError):
            await conn.complete(complete)


async def _then_cancel(wait: object, scope: trio.CancelScope) -> None:
    await wait()  # type: ignore[operator]
    scope.cancel()
