"""The proxy side of the agent protocol over a Trio stream: one connection, many requests.

`connect_agent` opens a Unix socket, does the handshake and yields an `AgentConnection` whose
`decide` sends one event and waits for its answer; any number of tasks may call it at once.
A reader task routes answers to waiters by ``correlation_id``; a writer task sends the
messages nobody waits on (cancels, pongs) so the reader never blocks on a full socket.
(Letting the waiting task read for itself, leader/follower style, saves a scheduler pass in
theory but measured slower: cancelling and re-arming the idle reader's wait costs more.)

The connection does not reconnect: a caller that sees `ConnectionLost` or `AgentDraining`
opens a new one. Time limits are the caller's cancel scopes around `decide`; a `decide`
cancelled while waiting tells the agent to stop with a `Cancel`.

Every request that got a `decide` must be ended with `complete` or `cancel`: that is how the
connection knows, after the agent's `GoAway`, when its last request is done and it may close.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import trio

from sentinel_stack.agent.errors import (
    AgentDraining,
    AgentError,
    AgentEventError,
    AgentUnavailable,
    ConnectionLost,
)
from sentinel_stack.agent.transport import FrameTransport
from sentinel_stack.protocol import (
    AgentDecision,
    AgentHello,
    Cancel,
    Configure,
    ConfigureResult,
    Decision,
    DecisionEvent,
    EventError,
    EventKind,
    Feature,
    FrameDecoder,
    GoAway,
    HandshakeError,
    Health,
    Hello,
    Message,
    Ping,
    Pong,
    ProtocolError,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    ResponseBodyChunk,
    ResponseHeaders,
    UnexpectedMessage,
    check_agent_hello,
    encode_message,
)

__all__ = [
    "AgentConnection",
    "AgentDraining",
    "AgentError",
    "AgentEventError",
    "AgentUnavailable",
    "ConnectionLost",
    "agent_connection",
    "connect_agent",
]

_RECEIVE_SIZE = 64 * 1024
_EVENT_KINDS: dict[type[DecisionEvent], EventKind] = {
    RequestHeaders: EventKind.REQUEST_HEADERS,
    RequestBodyChunk: EventKind.REQUEST_BODY,
    ResponseHeaders: EventKind.RESPONSE_HEADERS,
    ResponseBodyChunk: EventKind.RESPONSE_BODY,
}
_ALLOW = Decision()


class _Waiter:
    """One pending answer: set once, by the reader or by the connection's end."""

    __slots__ = ("cancelled", "done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: AgentError | None = None
        self.cancelled = False

    def resolve(self, value: Any = None, error: AgentError | None = None) -> None:
        if not self.done.is_set():
            self.value, self.error = value, error
            self.done.set()

    async def wait(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


class AgentConnection:
    """A handshaken connection to one agent. Create it with `connect_agent`."""

    def __init__(self, stream: trio.abc.Stream, hello: Hello, agent: AgentHello) -> None:
        self.hello = hello
        """What we offered."""
        self.agent = agent
        """What the agent chose: name, version, events, features, encoding, limits."""
        self.health: Health | None = None
        """The agent's latest health report, if it sends them."""
        self._stream = stream
        self._transport = FrameTransport(stream)
        self._decoder = FrameDecoder(agent.encoding, max_frame=hello.limits.max_frame)
        self._events = frozenset(agent.events)
        self._slots = trio.Semaphore(agent.limits.max_concurrency)
        self._pending: dict[int, _Waiter] = {}
        self._configuring: dict[int, _Waiter] = {}
        self._pings: dict[int, _Waiter] = {}
        self._nonces = itertools.count()
        self._open: set[int] = set()
        self._health_changed = trio.Event()
        self._goaway = trio.Event()
        self._closed: ConnectionLost | None = None
        self._lost = trio.Event()
        self._outbox_send, self._outbox = trio.open_memory_channel[tuple[Message, bool]](math.inf)
        self._background = trio.CancelScope()

    @property
    def draining(self) -> bool:
        """True once the agent said `GoAway`: no new requests go over this connection."""
        return self._goaway.is_set()

    async def wait_draining(self) -> None:
        """Return when the agent says `GoAway` (the moment to open a replacement)."""
        await self._goaway.wait()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def wait_closed(self) -> ConnectionLost:
        """Return, with the reason, once the connection has failed or been closed."""
        await self._lost.wait()
        assert self._closed is not None
        return self._closed

    @property
    def open_requests(self) -> int:
        """Requests started with `decide` and not yet ended by `complete` or `cancel`."""
        return len(self._open)

    def subscribes(self, kind: EventKind) -> bool:
        return kind in self._events

    async def decide(self, event: DecisionEvent) -> Decision:
        """Send ``event`` and return the agent's decision.

        Events the agent did not subscribe to are answered with allow without a round trip.
        Raises `AgentEventError`, `ConnectionLost`, or `AgentDraining` for a new request after
        the agent's `GoAway`.
        """
        cid = event.correlation_id
        if self._closed is not None:
            raise self._closed
        if cid not in self._open:
            if self.draining:
                raise AgentDraining(f"agent {self.agent.name!r} is draining")
            self._open.add(cid)
        if _EVENT_KINDS[type(event)] not in self._events:
            return _ALLOW
        if cid in self._pending:
            raise ValueError(f"correlation id {cid} already awaits a decision")
        try:
            self._slots.acquire_nowait()  # the common case, without a scheduler pass
        except trio.WouldBlock:
            await self._slots.acquire()
        waiter = self._pending[cid] = _Waiter()
        try:
            await self._send(event)
            decision: Decision = await waiter.wait()
            return decision
        finally:
            if self._pending.get(cid) is waiter:
                del self._pending[cid]
            if not waiter.done.is_set():
                # Our caller gave up while the agent works on it: the writer sends the Cancel
                # and only then frees the slot, so the agent never sees more than its limit.
                self._post(Cancel(cid, "proxy stopped waiting"), frees_slot=True)
            elif not waiter.cancelled:
                self._slots.release()

    async def complete(self, complete: RequestComplete) -> None:
        """End a request: tell the agent how it went (if it subscribed) and forget it."""
        self._open.discard(complete.correlation_id)
        if EventKind.REQUEST_COMPLETE in self._events and self._closed is None:
            await self._send(complete)
        await self._close_if_drained()

    async def cancel(self, correlation_id: int, reason: str = "") -> None:
        """End a request early; a `decide` still waiting for it raises `AgentEventError`."""
        self._open.discard(correlation_id)
        waiter = self._pending.pop(correlation_id, None)
        if waiter is not None:
            waiter.cancelled = True
            waiter.resolve(error=AgentEventError("cancelled", reason))
            self._post(Cancel(correlation_id, reason), frees_slot=True)
        await self._close_if_drained()

    async def configure(
        self, config: dict[str, Any] | msgspec.Struct, revision: int
    ) -> ConfigureResult:
        """Push a configuration and wait for the agent to apply or reject it."""
        if Feature.CONFIGURE not in self.agent.features:
            return ConfigureResult(revision, ok=False, error="agent does not accept configure")
        as_dict: dict[str, Any] = msgspec.to_builtins(config)
        waiter = self._configuring[revision] = _Waiter()
        try:
            await self._send(Configure(revision, as_dict))
            result: ConfigureResult = await waiter.wait()
            return result
        finally:
            self._configuring.pop(revision, None)

    async def ping(self) -> float:
        """Seconds for one Ping/Pong round trip."""
        nonce = next(self._nonces)
        waiter = self._pings[nonce] = _Waiter()
        started = trio.current_time()
        try:
            await self._send(Ping(nonce))
            await waiter.wait()
        finally:
            self._pings.pop(nonce, None)
        return trio.current_time() - started

    async def next_health(self) -> Health:
        """Wait for the agent's next health report."""
        changed = self._health_changed
        await changed.wait()
        if self._closed is not None:
            raise self._closed
        assert self.health is not None
        return self.health

    async def aclose(self) -> None:
        """Close now: waiters get `ConnectionLost`. Safe to call more than once."""
        self._fail(ConnectionLost("connection closed by the proxy"))
        await self._stream.aclose()

    async def _close_if_drained(self) -> None:
        if self.draining and not self._open:
            await self.aclose()

    def _post(self, message: Message, *, frees_slot: bool) -> None:
        """Queue a message nobody waits on for the writer task."""
        if self._closed is None:
            self._outbox_send.send_nowait((message, frees_slot))
        elif frees_slot:
            self._slots.release()

    async def _send(self, message: Message) -> None:
        if self._closed is not None:
            raise self._closed
        frame = encode_message(message, self.agent.encoding, max_frame=self.agent.limits.max_frame)
        sent = False
        try:
            await self._transport.send(frame)
            sent = True
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            self._fail(ConnectionLost(f"agent {self.agent.name!r}: {error}"))
            raise ConnectionLost(str(self._closed)) from error
        finally:
            if not sent and self._closed is None:
                # Cancelled part-way: a partial frame may be on the wire, so the framing is
                # lost and the connection with it.
                self._fail(ConnectionLost("a send was interrupted; the framing is lost"))

    def _fail(self, error: ConnectionLost) -> None:
        if self._closed is not None:
            return
        self._closed = error
        self._lost.set()
        for waiters in (self._pending, self._configuring, self._pings):
            for waiter in waiters.values():
                waiter.resolve(error=error)
        self._health_changed.set()
        self._outbox_send.close()
        self._background.cancel()

    async def _run(self, early: list[Message]) -> None:
        """Reader and writer, until the connection fails or closes; then close the stream."""
        with self._background:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_reader, early)
                nursery.start_soon(self._run_writer)
        await self._stream.aclose()

    async def _run_writer(self) -> None:
        async with self._outbox:
            async for message, frees_slot in self._outbox:
                try:
                    await self._send(message)
                except ConnectionLost:
                    return
                finally:
                    if frees_slot:
                        self._slots.release()

    async def _run_reader(self, early: list[Message]) -> None:
        self._fail(await self._read(early))

    async def _read(self, early: list[Message]) -> ConnectionLost:
        """Route what the agent sends until the connection ends; returns why it ended."""
        name = self.agent.name
        try:
            self._dispatch_all(early)
            while not (self.draining and not self._open):
                data = await self._transport.receive()
                if not data:
                    self._decoder.eof()
                    return ConnectionLost(f"agent {name!r} closed the connection")
                self._dispatch_all(self._decoder.feed(data))
        except ProtocolError as error:
            for message in error.messages:
                self._dispatch(message)
            with contextlib.suppress(ConnectionLost):
                await self._send(GoAway(reason=str(error)))
            return _lost(f"agent {name!r} broke the protocol: {error}", error)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            return _lost(f"agent {name!r}: {error}", error)
        return ConnectionLost(f"agent {name!r} is draining and no request is open")

    def _dispatch_all(self, messages: list[Message]) -> None:
        for message in messages:
            if not self._dispatch(message):
                raise UnexpectedMessage(f"{type(message).__name__} is not sent by an agent")

    def _dispatch(self, message: Message) -> bool:
        """Route one message from the agent; False when an agent must not send it."""
        if isinstance(message, AgentDecision):
            waiter = self._pending.pop(message.correlation_id, None)
            if waiter is not None:
                waiter.resolve(message.decision)
        elif isinstance(message, EventError):
            waiter = self._pending.pop(message.correlation_id, None)
            if waiter is not None:
                waiter.resolve(error=AgentEventError(message.code, message.message))
        elif isinstance(message, Health):
            self.health = message
            self._health_changed.set()
            self._health_changed = trio.Event()
        elif isinstance(message, ConfigureResult):
            waiter = self._configuring.pop(message.revision, None)
            if waiter is not None:
                waiter.resolve(message)
        elif isinstance(message, Pong):
            waiter = self._pings.pop(message.nonce, None)
            if waiter is not None:
                waiter.resolve()
        elif isinstance(message, Ping):
            self._post(Pong(message.nonce), frees_slot=False)
        elif isinstance(message, GoAway):
            self._goaway.set()
        else:
            return False
        return True


def _lost(message: str, cause: BaseException) -> ConnectionLost:
    lost = ConnectionLost(message)
    lost.__cause__ = cause
    return lost


async def _handshake(stream: trio.abc.Stream, hello: Hello) -> tuple[AgentHello, list[Message]]:
    decoder = FrameDecoder(max_frame=hello.limits.max_frame)
    await stream.send_all(encode_message(hello))
    messages: list[Message] = []
    while not messages:
        data = await stream.receive_some(_RECEIVE_SIZE)
        if not data:
            decoder.eof()
            raise HandshakeError("the agent closed the connection during the handshake")
        messages = decoder.feed(data)
    answer, rest = messages[0], messages[1:]
    if isinstance(answer, GoAway):
        raise HandshakeError(f"the agent refused the handshake: {answer.reason}")
    if not isinstance(answer, AgentHello):
        raise HandshakeError(f"expected AgentHello, got {type(answer).__name__}")
    check_agent_hello(hello, answer)
    return answer, rest


@asynccontextmanager
async def agent_connection(
    stream: trio.abc.Stream, hello: Hello | None = None
) -> AsyncIterator[AgentConnection]:
    """Handshake over an open ``stream`` and serve the connection for the ``async with`` body.

    Raises `HandshakeError` (a `ProtocolError`) when the agent refuses or answers badly. The
    stream is closed on exit.
    """
    hello = Hello() if hello is None else hello
    async with stream:
        try:
            answer, early = await _handshake(stream, hello)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise ConnectionLost(f"connection lost during the handshake: {error}") from error
        connection = AgentConnection(stream, hello, answer)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection._run, early)
            try:
                yield connection
            finally:
                await connection.aclose()


@asynccontextmanager
async def connect_agent(
    path: str | os.PathLike[str], hello: Hello | None = None
) -> AsyncIterator[AgentConnection]:
    """Connect to the agent listening on the Unix socket ``path``; see `agent_connection`."""
    try:
        stream = await trio.open_unix_socket(os.fspath(path))
    except OSError as error:
        raise AgentUnavailable(f"no agent at {os.fspath(path)}: {error.strerror}") from error
    async with agent_connection(stream, hello) as connection:
        yield connection
