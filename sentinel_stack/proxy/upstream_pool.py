"""The proxy's client to its upstreams: keep-alive connections, reused, bounded, streamed.

A request to an upstream over a connection that is already open saves a TCP handshake and
the upstream's accept work, which is most of the cost of a small request on a LAN. So the
pool keeps connections per `UpstreamTarget` and lends them out one exchange at a time::

    async with open_upstream_pool() as pool:
        async with pool.request(target, b"GET", b"/items", headers) as response:
            async for chunk in response.body():
                ...

What a caller may rely on:

- **Streaming both ways.** A request body given as an async iterable is sent as it is
  produced (with the caller's ``content-length`` if it declared one, else chunked), while the
  response is read, so an upstream may answer early. The response body is read only as fast
  as the caller iterates. Nothing is buffered whole.
- **Reuse only when clean.** A connection goes back to the pool only when the response was
  read to its end, the request was sent to its end and h11 agrees both sides may start a new
  cycle. Leaving the ``async with`` early closes the connection: draining an unknown amount
  would cost more than a new handshake.
- **Limits.** At most ``max_connections`` exchanges per target at once (a waiting request
  counts against its connect timeout), at most ``max_idle`` idle connections kept, each for at
  most ``idle_timeout``. `UpstreamPool.in_flight` feeds least-connections balancing.
- **Timeouts** are cancel scopes around each wait: ``connect`` (a free slot plus the TCP
  connect), ``read`` and ``write`` (longest silence), ``total`` (the whole exchange).
- **Errors** are `UpstreamError` subclasses whose ``request_sent`` tells a retry policy
  whether the upstream may have seen the request.
- **Stale keep-alive connections.** An idle connection the upstream closed (or wrote to) is
  noticed before use by a zero-timeout poll and dropped. The remaining race, the upstream
  closing just as a request is written, is retried once on a fresh connection only when
  retrying cannot do anything twice the client asked for once (RFC 9112 §9.3.1): the
  connection was reused, no byte of a response arrived, the method is idempotent and the
  body is replayable (bytes or none). Otherwise `UpstreamClosed` reaches the caller.

HTTP/2 (``scheme="h2c"``) lives in `upstream_h2` behind the same `UpstreamPool.request`.
"""

from __future__ import annotations

import math
import select
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import h11
import trio

if TYPE_CHECKING:
    from sentinel_stack.proxy.upstream_h2 import H2TargetPool

__all__ = [
    "Header",
    "PoolLimits",
    "RequestBody",
    "RequestBodyError",
    "TargetStats",
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTarget",
    "UpstreamTimeout",
    "UpstreamTimeouts",
    "open_upstream_pool",
]

Header = tuple[bytes, bytes]
RequestBody = AsyncIterable[bytes] | bytes | None
TimeoutKind = Literal["pool", "connect", "read", "write", "total"]

RECEIVE_SIZE = 64 * 1024
IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_BODY_EXPECTED = frozenset({b"POST", b"PUT", b"PATCH"})
_CLEANUP_SECONDS = 5.0
# A sender that wrote its last bytes may not have run again when the response ends.
_SENDER_GRACE = 0.05


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where a request goes. The whole value keys the pool: ``http`` is HTTP/1.1, ``h2c`` is
    HTTP/2 over cleartext with prior knowledge (gRPC upstreams)."""

    host: str
    port: int
    scheme: Literal["http", "h2c"] = "http"

    @property
    def authority(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}".encode("ascii")


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """Seconds. ``connect`` bounds getting a connection (waiting for a free slot plus the TCP
    connect); ``read``/``write`` the longest silence while receiving/sending; ``total`` the
    whole exchange, from the call to the end of the response body."""

    connect: float = 2.0
    read: float = 30.0
    write: float = 30.0
    total: float = math.inf


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Per target. For ``h2c`` targets ``max_connections`` counts connections and
    ``max_streams`` the concurrent requests on each (lowered to the upstream's setting)."""

    max_connections: int = 100
    max_idle: int = 16
    idle_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024
    max_streams: int = 100


@dataclass(frozen=True, slots=True)
class TargetStats:
    in_flight: int
    waiting: int
    idle: int
    connections_opened: int


class UpstreamError(Exception):
    """Base of the pool's errors. ``request_sent`` is False only when the upstream cannot
    have seen (or, per HTTP/2, did not process) any of the request: safe to retry anywhere."""

    def __init__(self, message: str, *, target: UpstreamTarget, request_sent: bool) -> None:
        super().__init__(f"upstream {target.authority.decode()}: {message}")
        self.target = target
        self.request_sent = request_sent


class UpstreamConnectError(UpstreamError):
    """The TCP connect failed (refused, unreachable, name not resolved)."""


class UpstreamTimeout(UpstreamError):
    """A time limit passed; ``kind`` says which (``pool`` is the wait for a free slot)."""

    def __init__(
        self, message: str, *, target: UpstreamTarget, request_sent: bool, kind: TimeoutKind
    ) -> None:
        super().__init__(message, target=target, request_sent=request_sent)
        self.kind = kind


class UpstreamProtocolError(UpstreamError):
    """The upstream sent something that is not valid HTTP."""


class UpstreamClosed(UpstreamError):
    """The upstream closed or reset the connection (or the HTTP/2 stream) mid-exchange."""


class RequestBodyError(UpstreamError):
    """The caller's request body failed (``__cause__``) or did not match its length."""


class ExchangeDeadlines:
    """One exchange's clock, as absolute cancel-scope deadlines (shared with `upstream_h2`)."""

    __slots__ = ("connect", "timeouts", "total")

    def __init__(self, timeouts: UpstreamTimeouts) -> None:
        now = trio.current_time()
        self.timeouts = timeouts
        self.total = now + timeouts.total
        self.connect = min(self.total, now + timeouts.connect)

    def silence(self, kind: Literal["read", "write"]) -> float:
        limit = self.timeouts.read if kind == "read" else self.timeouts.write
        return min(self.total, trio.current_time() + limit)

    def expired(self, kind: TimeoutKind) -> TimeoutKind:
        return "total" if trio.current_time() >= self.total else kind


class UpstreamResponse:
    """An upstream's response head; the body streams from `body`. ``trailers`` is filled
    (and ``complete`` set) once the body has been read to its end."""

    __slots__ = ("_next_chunk", "complete", "headers", "http_version", "status", "trailers")

    def __init__(
        self,
        status: int,
        headers: list[Header],
        http_version: str,
        next_chunk: Callable[[], Awaitable[bytes | None]],
    ) -> None:
        self.status = status
        self.headers = headers
        self.http_version = http_version
        self.trailers: list[Header] = []
        self.complete = False
        self._next_chunk = next_chunk

    def body(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (never empty ones); ends after the trailers."""
        return _BodyChunks(self._next_chunk)

    async def read(self) -> bytes:
        """The whole body, for small responses (health checks, tests)."""
        return b"".join([chunk async for chunk in self.body()])

    def detach(self) -> None:
        """Forget the exchange that produced this response, once it has ended.

        The exchange holds the response and the response held the exchange's reader: a
        reference cycle per request, which only the cyclic garbage collector could free.
        At hundreds of requests a second those collections were a visible part of the
        proxy's latency tail (docs/BENCHMARKS.md); cutting the link frees both at once.
        """
        self._next_chunk = _no_more_chunks if self.complete else _exchange_ended


async def _no_more_chunks() -> bytes | None:
    return None


async def _exchange_ended() -> bytes | None:
    raise RuntimeError("the body must be read inside the `request` block that returned it")


class _BodyChunks:
    """A plain async iterator, not a generator, so that abandoning it needs no finalizer."""

    __slots__ = ("_next_chunk",)

    def __init__(self, next_chunk: Callable[[], Awaitable[bytes | None]]) -> None:
        self._next_chunk = next_chunk

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


def connect_failure(error: OSError) -> str:
    """Why a connect failed: trio's "all attempts failed" hides the reasons in its cause."""
    causes = error.__cause__
    if isinstance(causes, BaseExceptionGroup):
        reasons = {str(e.strerror or e) for e in causes.exceptions if isinstance(e, OSError)}
        if reasons:
            return "; ".join(sorted(reasons))
    return str(error.strerror or error)


def is_replayable(body: RequestBody) -> bool:
    return body is None or isinstance(body, bytes)


class _H1Connection:
    __slots__ = ("h11", "idle_since", "stream")

    def __init__(self, stream: trio.SocketStream, max_header_bytes: int) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_bytes)
        self.idle_since = 0.0

    def closed_at_rest(self) -> bool:
        """Readable while idle means EOF, a reset or unsolicited bytes (a 408): unusable."""
        poller = select.poll()
        poller.register(self.stream.socket.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))

    def close(self) -> None:
        # Synchronous on purpose: a plain TCP close cannot block, and cleanup paths may be
        # cancelled. Trio's socket close wakes any task still waiting on the socket.
        self.stream.socket.close()


class _H1Exchange:
    """One request/response on one connection; the request body may stream from a task."""

    def __init__(
        self,
        target: UpstreamTarget,
        connection: _H1Connection,
        deadlines: ExchangeDeadlines,
        nursery: trio.Nursery,
    ) -> None:
        self._target = target
        self._connection = connection
        self._h11 = connection.h11
        self._deadlines = deadlines
        self._nursery = nursery
        self.request_sent = False
        self.response_bytes = 0
        self.response: UpstreamResponse | None = None
        self._send_failure: UpstreamError | None = None
        self._read_scope: trio.CancelScope | None = None
        self._sender_scope: trio.CancelScope | None = None
        self._sender_done: trio.Event | None = None
        self._finishing = False

    async def start(
        self, method: bytes, path: bytes, headers: Sequence[Header], body: RequestBody
    ) -> UpstreamResponse:
        request = h11.Request(
            method=method, target=path, headers=_h1_headers(self._target, method, headers, body)
        )
        data = self._h11.send(request)
        if isinstance(body, bytes | None):
            if body:
                data += self._h11.send(h11.Data(data=body))
            await self._send_early(data + self._h11.send(h11.EndOfMessage()))
        else:
            await self._send_early(data)
            if self._send_failure is None:
                self._sender_scope = trio.CancelScope(deadline=self._deadlines.total)
                self._sender_done = trio.Event()
                self._nursery.start_soon(self._send_body, body)
        return await self._receive_head()

    @property
    def sending(self) -> bool:
        return self._sender_done is not None and not self._sender_done.is_set()

    async def stop_sending(self) -> None:
        """End the request body task (it may still be writing when the response is done)."""
        assert self._sender_done is not None and self._sender_scope is not None
        if self.response is not None and self.response.complete:
            with trio.move_on_after(_SENDER_GRACE):
                await self._sender_done.wait()
        self._finishing = True
        self._sender_scope.cancel()
        await self._sender_done.wait()

    def reusable(self) -> bool:
        """Whether the connection may carry another exchange (and if so, reset it for one)."""
        state = self._h11
        if (
            self.response is None
            or not self.response.complete
            or self._send_failure is not None
            or state.our_state is not h11.DONE
            or state.their_state is not h11.DONE
            or state.trailing_data[0]
        ):
            return False
        state.start_next_cycle()
        return True

    def error(self, kind: type[UpstreamError], message: str) -> UpstreamError:
        return kind(message, target=self._target, request_sent=self.request_sent)

    def timeout(self, kind: TimeoutKind, message: str) -> UpstreamTimeout:
        return UpstreamTimeout(
            message, target=self._target, request_sent=self.request_sent, kind=kind
        )

    async def _send(self, data: bytes) -> None:
        self.request_sent = True
        with trio.CancelScope(deadline=self._deadlines.silence("write")) as scope:
            try:
                await self._connection.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                message = "the connection closed while the request was being sent"
                raise self.error(UpstreamClosed, message) from error
        if scope.cancelled_caught:
            kind = self._deadlines.expired("write")
            raise self.timeout(kind, f"{kind} timeout while sending the request")

    async def _send_early(self, data: bytes) -> None:
        """Send, but let a broken pipe wait: the upstream may have answered before closing."""
        try:
            await self._send(data)
        except UpstreamClosed as error:
            self._send_failure = error

    async def _send_body(self, chunks: AsyncIterable[bytes]) -> None:
        assert self._sender_done is not None and self._sender_scope is not None
        failure: UpstreamError | None = None
        try:
            with self._sender_scope:
                try:
                    async for chunk in chunks:
                        if chunk:
                            await self._send(self._h11.send(h11.Data(data=chunk)))
                    await self._send(self._h11.send(h11.EndOfMessage()))
                except UpstreamError as error:
                    failure = error
                except Exception as error:
                    failure = self.error(RequestBodyError, f"the request body failed: {error!r}")
                    failure.__cause__ = error
            if self._sender_scope.cancelled_caught and not self._finishing:
                failure = self.timeout("total", "total timeout while sending the request body")
        finally:
            self._sender_done.set()
        if failure is not None:
            self._send_failure = failure
            # A closed connection shows on the read side too, maybe after an early response;
            # any other failure means the upstream will never see the whole request.
            if not isinstance(failure, UpstreamClosed) and self._read_scope is not None:
                self._read_scope.cancel()

    def _raise_send_failure(self) -> None:
        if self._send_failure is not None and not isinstance(self._send_failure, UpstreamClosed):
            raise self._send_failure

    async def _receive(self) -> bytes:
        self._raise_send_failure()
        with trio.CancelScope(deadline=self._deadlines.silence("read")) as scope:
            self._read_scope = scope
            try:
                data = await self._connection.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                message = "the connection was reset before the response ended"
                raise self.error(UpstreamClosed, message) from error
            finally:
                self._read_scope = None
        if scope.cancelled_caught:
            self._raise_send_failure()
            kind = self._deadlines.expired("read")
            raise self.timeout(kind, f"{kind} timeout while waiting for the response")
        self.response_bytes += len(data)
        return data

    async def _next_event(self) -> h11.Event:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                if self._h11.trailing_data[1]:
                    message = "the connection closed before the response ended"
                    raise self.error(UpstreamClosed, message) from error
                message = f"invalid HTTP/1.1 response: {error}"
                raise self.error(UpstreamProtocolError, message) from error
            if event is h11.NEED_DATA:
                self._h11.receive_data(await self._receive())
            elif isinstance(event, h11.ConnectionClosed):
                raise self.error(UpstreamClosed, "the connection closed before the response")
            elif isinstance(event, h11.Event):
                return event
            else:  # PAUSED: the upstream switched protocols, which this pool never asks for
                raise self.error(UpstreamProtocolError, "unexpected protocol switch")

    async def _receive_head(self) -> UpstreamResponse:
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                version = event.http_version.decode("ascii")
                self.response = UpstreamResponse(
                    event.status_code, list(event.headers), version, self._next_chunk
                )
                return self.response
            if not isinstance(event, h11.InformationalResponse):  # 100 Continue, 103
                message = f"expected a response head, got {type(event).__name__}"
                raise self.error(UpstreamProtocolError, message)

    async def _next_chunk(self) -> bytes | None:
        response = self.response
        assert response is not None
        while not response.complete:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                response.trailers = list(event.headers)
                response.complete = True
            else:
                message = f"unexpected {type(event).__name__} in a response body"
                raise self.error(UpstreamProtocolError, message)
        return None


def _h1_headers(
    target: UpstreamTarget, method: bytes, headers: Sequence[Header], body: RequestBody
) -> list[Header]:
    """The caller's headers with framing decided here: the pool knows how it sends the body.

    ``te`` is dropped: it is hop-by-hop, and over HTTP/1.1 the trailers it asks for are
    not relayed (only HTTP/2 upstreams' are, see `upstream_h2`)."""
    out: list[Header] = []
    declared: bytes | None = None
    has_host = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            declared = value
        elif lowered not in (b"transfer-encoding", b"te"):
            has_host = has_host or lowered == b"host"
            out.append((name, value))
    if not has_host:
        out.insert(0, (b"host", target.authority))
    if isinstance(body, bytes):
        out.append((b"content-length", str(len(body)).encode("ascii")))
    elif body is None:
        if method in _BODY_EXPECTED:
            out.append((b"content-length", b"0"))
    elif declared is not None:
        out.append((b"content-length", declared))
    else:
        out.append((b"transfer-encoding", b"chunked"))
    return out


async def _finish(exchange: _H1Exchange) -> bool:
    """End an exchange, even when cancelled: the sender task must end before the connection
    is reused or closed. True when it may be reused."""
    try:
        if exchange.sending:
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await exchange.stop_sending()
            if exchange.sending:
                return False
        return exchange.reusable()
    finally:
        if exchange.response is not None:
            exchange.response.detach()


class _H1Target:
    """One HTTP/1.1 target's connections: idle ones (oldest first) and the exchange slots."""

    __slots__ = ("connections_opened", "idle", "slots")

    def __init__(self, limits: PoolLimits) -> None:
        self.idle: deque[_H1Connection] = deque()
        self.slots = trio.CapacityLimiter(limits.max_connections)
        self.connections_opened = 0


class UpstreamPool:
    """Keep-alive connections to upstream targets; create with `open_upstream_pool`."""

    def __init__(
        self, nursery: trio.Nursery, limits: PoolLimits, timeouts: UpstreamTimeouts
    ) -> None:
        self.limits = limits
        self.timeouts = timeouts
        self._nursery = nursery
        self._h1: dict[UpstreamTarget, _H1Target] = {}
        self._h2: dict[UpstreamTarget, H2TargetPool] = {}
        self._open = True
        self._idle_added = trio.Event()
        self._reaper_sleeps_forever = True

    def in_flight(self, target: UpstreamTarget) -> int:
        """Exchanges in progress to ``target`` (for least-connections balancing)."""
        return self.stats(target).in_flight

    def stats(self, target: UpstreamTarget) -> TargetStats:
        if target.scheme == "h2c":
            pool = self._h2.get(target)
            return pool.stats() if pool is not None else TargetStats(0, 0, 0, 0)
        state = self._h1.get(target)
        if state is None:
            return TargetStats(0, 0, 0, 0)
        limiter = state.slots.statistics()
        return TargetStats(
            limiter.borrowed_tokens,
            limiter.tasks_waiting,
            len(state.idle),
            state.connections_opened,
        )

    @asynccontextmanager
    async def request(
        self,
        target: UpstreamTarget,
        method: bytes,
        path: bytes,
        headers: Sequence[Header] = (),
        body: RequestBody = None,
        timeouts: UpstreamTimeouts | None = None,
    ) -> AsyncIterator[UpstreamResponse]:
        """Send one request and yield the response once its head has arrived.

        ``headers`` are sent as given except framing (``content-length``,
        ``transfer-encoding``), which follows ``body``; ``host`` is added when absent.
        Hop-by-hop headers are the caller's to strip. Raises `UpstreamError` subclasses,
        from here or from reading the body; invalid header bytes raise h11's
        ``LocalProtocolError`` (the caller's bug, nothing was sent).
        """
        if not self._open:
            raise RuntimeError("the upstream pool is closed")
        deadlines = ExchangeDeadlines(timeouts or self.timeouts)
        if target.scheme == "h2c":
            async with self._h2_pool(target).request(
                method, path, headers, body, deadlines
            ) as response:
                yield response
            return
        state = self._h1.get(target)
        if state is None:
            state = self._h1[target] = _H1Target(self.limits)
        borrower = object()
        await self._acquire(target, state.slots, borrower, deadlines)
        try:
            connection, exchange, response = await self._start(
                target, state, deadlines, method, path, headers, body
            )
            try:
                yield response
            finally:
                reusable = await _finish(exchange)
                self._release(state, connection, reusable)
        finally:
            state.slots.release_on_behalf_of(borrower)

    async def _acquire(
        self,
        target: UpstreamTarget,
        slots: trio.CapacityLimiter,
        borrower: object,
        deadlines: ExchangeDeadlines,
    ) -> None:
        try:  # a free slot costs no trip through the scheduler (the exchange checkpoints)
            slots.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            pass
        else:
            return
        with trio.CancelScope(deadline=deadlines.connect) as scope:
            await slots.acquire_on_behalf_of(borrower)
        if scope.cancelled_caught:
            kind = deadlines.expired("pool")
            message = f"{kind} timeout waiting for one of {self.limits.max_connections} slots"
            raise UpstreamTimeout(message, target=target, request_sent=False, kind=kind)

    async def _start(
        self,
        target: UpstreamTarget,
        state: _H1Target,
        deadlines: ExchangeDeadlines,
        method: bytes,
        path: bytes,
        headers: Sequence[Header],
        body: RequestBody,
    ) -> tuple[_H1Connection, _H1Exchange, UpstreamResponse]:
        may_retry = method in IDEMPOTENT_METHODS and is_replayable(body)
        fresh = False
        while True:
            connection = self._reuse(state) if not fresh else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect(target, state, deadlines)
            exchange = _H1Exchange(target, connection, deadlines, self._nursery)
            try:
                return connection, exchange, await exchange.start(method, path, headers, body)
            except UpstreamClosed:
                await _finish(exchange)
                connection.close()
                if not (may_retry and reused and exchange.response_bytes == 0):
                    raise
                fresh = True  # an upstream that just closed idle connections may close more
            except BaseException:
                await _finish(exchange)
                connection.close()
                raise

    def _reuse(self, state: _H1Target) -> _H1Connection | None:
        while state.idle:
            connection = state.idle.pop()  # the most recent: the least likely to be stale
            if not connection.closed_at_rest():
                return connection
            connection.close()
        return None

    async def _connect(
        self, target: UpstreamTarget, state: _H1Target, deadlines: ExchangeDeadlines
    ) -> _H1Connection:
        with trio.CancelScope(deadline=deadlines.connect) as scope:
            try:
                stream = await trio.open_tcp_stream(target.host, target.port)
            except OSError as error:
                message = f"connect failed: {connect_failure(error)}"
                raise UpstreamConnectError(message, target=target, request_sent=False) from error
        if scope.cancelled_caught:
            kind = deadlines.expired("connect")
            raise UpstreamTimeout(
                f"{kind} timeout while connecting", target=target, request_sent=False, kind=kind
            )
        state.connections_opened += 1
        return _H1Connection(stream, self.limits.max_header_bytes)

    def _release(self, state: _H1Target, connection: _H1Connection, reusable: bool) -> None:
        if reusable and self._open and len(state.idle) < self.limits.max_idle:
            connection.idle_since = trio.current_time()
            state.idle.append(connection)
            if self._reaper_sleeps_forever:
                self._idle_added.set()
        else:
            connection.close()

    def _h2_pool(self, target: UpstreamTarget) -> H2TargetPool:
        pool = self._h2.get(target)
        if pool is None:
            # Imported here: upstream_h2 builds on this module's types.
            from sentinel_stack.proxy.upstream_h2 import H2TargetPool

            pool = self._h2[target] = H2TargetPool(target, self.limits, self._nursery)
        return pool

    async def _evict_idle(self) -> None:
        """Close idle connections past ``idle_timeout``, sleeping until the next expiry."""
        timeout = self.limits.idle_timeout
        while True:
            now = trio.current_time()
            next_expiry = math.inf
            for state in self._h1.values():
                while state.idle and state.idle[0].idle_since + timeout <= now:
                    state.idle.popleft().close()
                if state.idle:
                    next_expiry = min(next_expiry, state.idle[0].idle_since + timeout)
            self._idle_added = trio.Event()
            self._reaper_sleeps_forever = next_expiry == math.inf
            with trio.move_on_at(next_expiry):
                await self._idle_added.wait()

    async def _close(self) -> None:
        self._open = False
        for state in self._h1.values():
            while state.idle:
                state.idle.pop().close()
        for pool in self._h2.values():
            await pool.aclose()


@asynccontextmanager
async def open_upstream_pool(
    limits: PoolLimits | None = None, timeouts: UpstreamTimeouts | None = None
) -> AsyncIterator[UpstreamPool]:
    """A pool for the ``async with`` body; its idle connections close on exit.

    ``timeouts`` are the defaults for requests that pass none. The pool's own tasks (idle
    eviction, streamed request bodies, HTTP/2 connection readers) live in a nursery here.
    """
    async with trio.open_nursery() as nursery:
        pool = UpstreamPool(nursery, limits or PoolLimits(), timeouts or UpstreamTimeouts())
        nursery.start_soon(pool._evict_idle)
        try:
            yield pool
        finally:
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await pool._close()
            nursery.cancel_scope.cancel()
