"""How an agent is written: override hooks on `Agent`, or register functions on `FunctionAgent`.

The SDK calls the hooks; the agent never sees sockets, frames or correlation bookkeeping.
Hooks are async so an agent may await its own I/O (a reputation lookup, a rule reload), and
many run at once on one connection, so an agent keeps per-request state keyed by
``correlation_id`` if it needs any.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from sentinel_stack.protocol import (
    Configure,
    Decision,
    DecisionEvent,
    EventKind,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    ResponseBodyChunk,
    ResponseHeaders,
)

__all__ = ["Agent", "AgentHealth", "FunctionAgent"]

_ALLOW = Decision()
_HOOKS: dict[EventKind, str] = {
    EventKind.REQUEST_HEADERS: "on_request_headers",
    EventKind.REQUEST_BODY: "on_request_body",
    EventKind.RESPONSE_HEADERS: "on_response_headers",
    EventKind.RESPONSE_BODY: "on_response_body",
    EventKind.REQUEST_COMPLETE: "on_request_complete",
}


class AgentHealth(msgspec.Struct, frozen=True):
    """An agent's own view of its health; the SDK adds the counters when it reports."""

    status: Literal["ok", "degraded", "failing"] = "ok"
    detail: str = ""


class Agent:
    """Base class of an agent. Every hook has a harmless default (allow, do nothing).

    The events the agent subscribes to in the handshake are the ones whose hooks a subclass
    overrides, unless ``events`` lists them explicitly. A hook that raises makes the SDK answer
    ``EventError(agent_error)``, and the proxy applies its fail-open/closed policy.
    """

    name: str = "agent"
    version: str = ""
    events: tuple[EventKind, ...] | None = None
    concurrent: bool = True
    """False: decision hooks run one at a time, inside the connection's reader.

    That saves a task start and a scheduler pass per event (about a fifth of a round trip,
    see scripts/bench-agent-rtt) and suits hooks that only compute: on one Python thread they
    gain nothing from running concurrently. Hooks that await I/O must keep it True, or one
    slow request holds up every other request on the connection.
    """

    def subscribed_events(self) -> tuple[EventKind, ...]:
        """The events to ask the proxy for, in protocol order."""
        if self.events is not None:
            return self.events
        return tuple(
            kind
            for kind, hook in _HOOKS.items()
            if getattr(type(self), hook) is not getattr(Agent, hook)
        )

    async def decide(self, event: DecisionEvent) -> Decision:
        """Route a decision event to its hook (the SDK's single entry point)."""
        if isinstance(event, RequestHeaders):
            return await self.on_request_headers(event)
        if isinstance(event, RequestBodyChunk):
            return await self.on_request_body(event)
        if isinstance(event, ResponseHeaders):
            return await self.on_response_headers(event)
        return await self.on_response_body(event)

    async def on_start(self) -> None:
        """Before the agent reports READY: load rules, open databases. Raising aborts startup."""

    async def on_stop(self) -> None:
        """After the drain finished: flush and close what `on_start` opened."""

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        return _ALLOW

    async def on_request_body(self, chunk: RequestBodyChunk) -> Decision:
        return _ALLOW

    async def on_response_headers(self, response: ResponseHeaders) -> Decision:
        return _ALLOW

    async def on_response_body(self, chunk: ResponseBodyChunk) -> Decision:
        return _ALLOW

    async def on_request_complete(self, complete: RequestComplete) -> None:
        """How a request ended; the place to update counters and free per-request state."""

    async def on_configure(self, update: Configure) -> None:
        """Apply a new configuration (hot reload). Raise to reject it; the old one stays.

        Typically ``self.config = update.decode(MyConfig)``: a validation error then names
        the key path, and the proxy reports it to whoever changed the config.
        """

    def health(self) -> AgentHealth:
        """Called for every health report; keep it cheap and non-blocking."""
        return AgentHealth()


class FunctionAgent(Agent):
    """An agent assembled from decorated functions, for agents too small to deserve a class.

    ::

        agent = FunctionAgent("denylist")

        @agent.request_headers
        async def check(request: RequestHeaders) -> Decision: ...

    Each decorator returns the function unchanged, so it stays callable in tests.
    """

    def __init__(self, name: str, version: str = "") -> None:
        self.name = name
        self.version = version
        self._request_headers: Callable[[RequestHeaders], Awaitable[Decision]] | None = None
        self._request_body: Callable[[RequestBodyChunk], Awaitable[Decision]] | None = None
        self._response_headers: Callable[[ResponseHeaders], Awaitable[Decision]] | None = None
        self._response_body: Callable[[ResponseBodyChunk], Awaitable[Decision]] | None = None
        self._request_complete: Callable[[RequestComplete], Awaitable[None]] | None = None
        self._configure: Callable[[Configure], Awaitable[None]] | None = None
        self._health: Callable[[], AgentHealth] | None = None

    def subscribed_events(self) -> tuple[EventKind, ...]:
        if self.events is not None:
            return self.events
        registered = {
            EventKind.REQUEST_HEADERS: self._request_headers,
            EventKind.REQUEST_BODY: self._request_body,
            EventKind.RESPONSE_HEADERS: self._response_headers,
            EventKind.RESPONSE_BODY: self._response_body,
            EventKind.REQUEST_COMPLETE: self._request_complete,
        }
        return tuple(kind for kind, hook in registered.items() if hook is not None)

    def request_headers(
        self, function: Callable[[RequestHeaders], Awaitable[Decision]]
    ) -> Callable[[RequestHeaders], Awaitable[Decision]]:
        self._request_headers = function
        return function

    def request_body(
        self, function: Callable[[RequestBodyChunk], Awaitable[Decision]]
    ) -> Callable[[RequestBodyChunk], Awaitable[Decision]]:
        self._request_body = function
        return function

    def response_headers(
        self, function: Callable[[ResponseHeaders], Awaitable[Decision]]
    ) -> Callable[[ResponseHeaders], Awaitable[Decision]]:
        self._response_headers = function
        return function

    def response_body(
        self, function: Callable[[ResponseBodyChunk], Awaitable[Decision]]
    ) -> Callable[[ResponseBodyChunk], Awaitable[Decision]]:
        self._response_body = function
        return function

    def request_complete(
        self, function: Callable[[RequestComplete], Awaitable[None]]
    ) -> Callable[[RequestComplete], Awaitable[None]]:
        self._request_complete = function
        return function

    def configure(
        self, function: Callable[[Configure], Awaitable[None]]
    ) -> Callable[[Configure], Awaitable[None]]:
        self._configure = function
        return function

    def health_check(self, function: Callable[[], AgentHealth]) -> Callable[[], AgentHealth]:
        self._health = function
        return function

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        hook = self._request_headers
        return _ALLOW if hook is None else await hook(request)

    async def on_request_body(self, chunk: RequestBodyChunk) -> Decision:
        hook = self._request_body
        return _ALLOW if hook is None else await hook(chunk)

    async def on_response_headers(self, response: ResponseHeaders) -> Decision:
        hook = self._response_headers
        return _ALLOW if hook is None else await hook(response)

    async def on_response_body(self, chunk: ResponseBodyChunk) -> Decision:
        hook = self._response_body
        return _ALLOW if hook is None else await hook(chunk)

    async def on_request_complete(self, complete: RequestComplete) -> None:
        if self._request_complete is not None:
            await self._request_complete(complete)

    async def on_configure(self, update: Configure) -> None:
        if self._configure is not None:
            await self._configure(update)

    def health(self) -> AgentHealth:
        return AgentHealth() if self._health is None else self._health()
