"""The agent side of the protocol over Trio streams: accept, handshake, decide concurrently, drain.

One `AgentServer` serves one `Agent` on one listener. Each connection is a session task with
three kinds of children: a reader that decodes frames and dispatches them, one task per event
being decided, and background tasks (health reports, the drain notice). A decision is sent as
soon as its handler returns, so answers may overtake each other; ``correlation_id`` matches
them up on the proxy side.

Drain (`AgentServer.drain`, e.g. on SIGTERM): stop accepting, tell every connection `GoAway`,
keep answering until the proxy closes each connection (it does once its open requests are
done), and cut what is left when ``drain_timeout`` expires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from sentinel_stack.agent.base import Agent
from sentinel_stack.agent.transport import FrameTransport
from sentinel_stack.protocol import (
    AgentDecision,
    AgentHello,
    AgentOffer,
    Cancel,
    Configure,
    ConfigureResult,
    DecisionEvent,
    Encoding,
    EventError,
    Feature,
    FrameDecoder,
    FrameTooLarge,
    GoAway,
    HandshakeError,
    Health,
    Hello,
    Limits,
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
    encode_message,
    negotiate,
)

__all__ = ["AgentServer"]

log = logging.getLogger("sentinel_stack.agent")

_DEFAULT_LIMITS = Limits()
_DECISION_EVENTS = (RequestHeaders, RequestBodyChunk, ResponseHeaders, ResponseBodyChunk)


class AgentServer:
    """Serves ``agent`` to every proxy connection that arrives on a listener.

    Counters (``served``, ``errors``, ``in_flight``) and ``config_revision`` are shared by all
    connections and feed the health reports.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        limits: Limits = _DEFAULT_LIMITS,
        encodings: Sequence[Encoding] = (Encoding.MSGPACK, Encoding.JSON),
        health_interval: float = 10.0,
        drain_timeout: float = 10.0,
    ) -> None:
        self.agent = agent
        self.health_interval = health_interval
        self.drain_timeout = drain_timeout
        self.limits = limits
        self.encodings = tuple(encodings)
        self.served = 0
        self.errors = 0
        self.in_flight = 0
        self.config_revision = 0
        self.connections = 0
        self._draining = trio.Event()
        self._accept_scope = trio.CancelScope()
        self._connections_scope: trio.CancelScope | None = None
        self._configure_lock = trio.Lock()

    @property
    def offer(self) -> AgentOffer:
        """What this server answers a `Hello` with (read at each handshake)."""
        return AgentOffer(
            name=self.agent.name,
            version=self.agent.version,
            events=self.agent.subscribed_events(),
            encodings=self.encodings,
            limits=self.limits,
        )

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def drain(self) -> None:
        """Begin a graceful stop; `serve` returns once every connection has closed.

        Idempotent. Must be called from inside the Trio run (a signal task, a test).
        """
        if self._draining.is_set():
            return
        self._draining.set()
        self._accept_scope.cancel()
        if self._connections_scope is not None:
            self._connections_scope.deadline = trio.current_time() + self.drain_timeout

    async def serve(
        self,
        listener: trio.abc.Listener[trio.abc.Stream],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept and serve connections until drained; closes ``listener`` when it stops."""
        async with trio.open_nursery() as connections:
            self._connections_scope = connections.cancel_scope
            if self.draining:
                connections.cancel_scope.deadline = trio.current_time() + self.drain_timeout
            async with listener:
                task_status.started()
                with self._accept_scope:
                    while True:
                        stream = await listener.accept()
                        connections.start_soon(self.serve_connection, stream)
            log.info("stopped accepting", extra={"connections": self.connections})
        if connections.cancel_scope.cancelled_caught:
            log.warning("drain timed out; in-flight work was cut")

    async def serve_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one proxy connection until it closes; never raises for the peer's faults."""
        self.connections += 1
        try:
            await _Session(self, stream).run()
        finally:
            self.connections -= 1
            await stream.aclose()

    def health_report(self) -> Health:
        check = self.agent.health()
        return Health(
            status=check.status,
            detail=check.detail,
            in_flight=self.in_flight,
            served=self.served,
            errors=self.errors,
            config_revision=self.config_revision,
        )

    async def apply_configure(self, update: Configure) -> ConfigureResult:
        """Apply configuration updates one at a time, whichever connection they came from."""
        async with self._configure_lock:
            try:
                await self.agent.on_configure(update)
            except Exception as error:
                log.warning(
                    "configuration rejected",
                    extra={"revision": update.revision, "error": str(error)},
                )
                return ConfigureResult(update.revision, ok=False, error=str(error))
            self.config_revision = update.revision
            log.info("configuration applied", extra={"revision": update.revision})
            return ConfigureResult(update.revision)


class _Session:
    """One proxy connection: handshake, then a read loop that spawns a task per event."""

    def __init__(self, server: AgentServer, stream: trio.abc.Stream) -> None:
        self.server = server
        self.transport = FrameTransport(stream)
        self.decoder = FrameDecoder(max_frame=server.limits.max_frame)
        self.encoding = Encoding.JSON
        self.peer_max_frame = server.limits.max_frame
        self.established = False
        self.running: dict[int, trio.CancelScope] = {}
        self.scope = trio.CancelScope()

    async def run(self) -> None:
        # Handlers outlive the read loop (they finish after the peer's EOF); background tasks
        # do not.
        with self.scope:
            async with trio.open_nursery() as handlers, trio.open_nursery() as background:
                background.start_soon(self._announce_drain)
                hello = await self._handshake()
                if hello is None:
                    background.cancel_scope.cancel()
                    return
                if Feature.HEALTH in hello.features:
                    background.start_soon(self._report_health)
                await self._read_loop(handlers)
                background.cancel_scope.cancel()

    async def _receive(self) -> list[Message] | None:
        """The next messages from the peer; None at a clean end of stream."""
        while True:
            data = await self.transport.receive()
            if not data:
                self.decoder.eof()
                return None
            messages = self.decoder.feed(data)
            if messages:
                return messages

    async def _handshake(self) -> AgentHello | None:
        try:
            messages = await self._receive()
            if messages is None:
                return None
            hello = messages[0]
            if not isinstance(hello, Hello) or len(messages) > 1:
                raise HandshakeError("the proxy must send Hello first and wait for the answer")
            answer = negotiate(hello, self.server.offer)
        except ProtocolError as error:
            log.warning("handshake failed", extra={"error": str(error)})
            await self._send(GoAway(reason=str(error)))
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        await self._send(answer)
        self.encoding = self.decoder.encoding = answer.encoding
        self.peer_max_frame = hello.limits.max_frame
        self.established = True
        log.debug(
            "connection established",
            extra={"peer": hello.name, "encoding": str(answer.encoding)},
        )
        return answer

    async def _read_loop(self, handlers: trio.Nursery) -> None:
        while True:
            error: ProtocolError | None = None
            try:
                messages = await self._receive()
            except ProtocolError as exc:
                messages, error = exc.messages, exc
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if messages is None:
                return
            try:
                for message in messages:
                    await self._dispatch(message, handlers)
            except UnexpectedMessage as exc:
                error = exc
            if error is not None:
                log.warning("protocol error from proxy", extra={"error": str(error)})
                await self._send(GoAway(reason=str(error)))
                return

    async def _dispatch(self, message: Message, handlers: trio.Nursery) -> None:
        server = self.server
        if isinstance(message, _DECISION_EVENTS):
            cid = message.correlation_id
            if cid in self.running:
                await self._send(EventError(cid, "duplicate", "event already being decided"))
            elif len(self.running) >= server.limits.max_concurrency:
                await self._send(EventError(cid, "over_capacity", "max_concurrency reached"))
            else:
                scope = self.running[cid] = trio.CancelScope()
                server.in_flight += 1
                if server.agent.concurrent:
                    handlers.start_soon(self._decide, message, scope)
                else:
                    await self._decide(message, scope)
        elif isinstance(message, Cancel):
            cancelled = self.running.pop(message.correlation_id, None)
            if cancelled is not None:
                server.in_flight -= 1
                cancelled.cancel()
        elif isinstance(message, RequestComplete):
            handlers.start_soon(self._complete, message)
        elif isinstance(message, Configure):
            handlers.start_soon(self._configure, message)
        elif isinstance(message, Ping):
            await self._send(Pong(message.nonce))
        elif isinstance(message, GoAway):
            log.debug("proxy is going away", extra={"reason": message.reason})
        elif not isinstance(message, Pong):
            raise UnexpectedMessage(f"{type(message).__name__} is not sent by a proxy")

    async def _decide(self, event: DecisionEvent, scope: trio.CancelScope) -> None:
        cid = event.correlation_id
        with scope:
            try:
                decision = await self.server.agent.decide(event)
                frame = self._encode(AgentDecision(cid, decision))
                failed = False
            except Exception as error:
                log.exception("agent hook failed", extra={"correlation_id": cid})
                message = f"{type(error).__name__}: {error}"
                frame = self._encode(EventError(cid, "agent_error", message[:1000]))
                failed = True
        if self.running.pop(cid, None) is None:
            return  # the proxy cancelled this event and wants no answer
        # Free the slot before answering: the proxy may send its next event the moment it
        # reads the answer, and must not find us still counting this one.
        self.server.in_flight -= 1
        if failed:
            self.server.errors += 1
        else:
            self.server.served += 1
        await self._send_frame(frame)

    async def _complete(self, complete: RequestComplete) -> None:
        try:
            await self.server.agent.on_request_complete(complete)
        except Exception:
            log.exception("agent hook failed", extra={"correlation_id": complete.correlation_id})

    async def _configure(self, update: Configure) -> None:
        await self._send(await self.server.apply_configure(update))

    async def _report_health(self) -> None:
        while True:
            await self._send(self.server.health_report())
            await trio.sleep(self.server.health_interval)

    async def _announce_drain(self) -> None:
        await self.server._draining.wait()
        if self.established:
            await self._send(GoAway(reason="agent is draining"))
        else:
            self.scope.cancel()

    def _encode(self, message: Message) -> bytes:
        return encode_message(message, self.encoding, max_frame=self.peer_max_frame)

    async def _send(self, message: Message) -> None:
        try:
            frame = self._encode(message)
        except FrameTooLarge as error:
            log.error("message too large for the proxy", extra={"error": str(error)})  # noqa: TRY400
            return
        await self._send_frame(frame)

    async def _send_frame(self, frame: bytes) -> None:
        """Send one frame; a peer that is gone ends the session instead of raising."""
        try:
            await self.transport.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.scope.cancel()
