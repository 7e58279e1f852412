"""HTTP/2 to upstreams over cleartext with prior knowledge (h2c): many streams per connection.

gRPC upstreams speak only HTTP/2, stream in both directions and put their outcome in trailers
(``grpc-status``), so the proxy needs an HTTP/2 client that passes trailers through and sends
``te: trailers``. `UpstreamPool.request` routes ``scheme="h2c"`` targets here and the caller
sees the same `UpstreamResponse` as over HTTP/1.1.

Shape: one `H2TargetPool` per target holds `_H2Connection`s. Each connection runs a reader
task (frames in, to per-stream queues) and a writer task (h2's outbound bytes, to the socket)
in the pool's nursery. Request tasks only drive the h2 state machine and wait on their own
stream, so a cancelled request never leaves half a frame on the shared socket.

Flow control: inbound, a stream's window is handed back only as the caller consumes its
chunks, so a slow reader buffers at most one stream window and the upstream pauses; outbound,
request data waits for the upstream's windows and for the writer to drain a bounded backlog.

A new stream goes to the first connection with room (below both our ``max_streams`` and the
upstream's ``SETTINGS_MAX_CONCURRENT_STREAMS``); a second connection opens only when all are
full, and only one connect is in flight at a time, so a burst of requests shares one
connection instead of racing to open many.

Retries, once, before any response: a stream the upstream refused (``REFUSED_STREAM``, or
above a GOAWAY's last stream id) was not processed and goes again whatever its method; a
stream whose connection ended (close, or a GOAWAY at or below its id: h2 accepts no frame
after a GOAWAY, so those streams cannot finish either) goes again only for an idempotent
method, as over HTTP/1.1. Either way the body must be replayable. A stream reset on its own
is the upstream's answer and reaches the caller as `UpstreamClosed`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import trio

from sentinel_stack.proxy.upstream_pool import (
    IDEMPOTENT_METHODS,
    RECEIVE_SIZE,
    ExchangeDeadlines,
    Header,
    PoolLimits,
    RequestBody,
    RequestBodyError,
    TargetStats,
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTarget,
    UpstreamTimeout,
    connect_failure,
    is_replayable,
)

__all__ = ["H2TargetPool"]

_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 16 << 20
_DEFAULT_WINDOW = 65535
_WRITE_HIGH_WATER = 256 * 1024
_CLEANUP_SECONDS = 5.0
_SENDER_GRACE = 0.05
# Connection-specific headers (RFC 9113 §8.2.2); ``host`` becomes ``:authority``.
_NOT_FORWARDED = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"}
)

StreamItem = h2.events.Event | UpstreamError


class _H2Connection:
    """One TCP connection, its h2 state machine, and the queues of its open streams."""

    def __init__(
        self,
        target: UpstreamTarget,
        stream: trio.SocketStream,
        limits: PoolLimits,
        on_closed: Callable[[_H2Connection], None],
    ) -> None:
        self.target = target
        self.socket = stream
        self.limits = limits
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.h2.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_bytes,
            }
        )
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self.streams: dict[int, trio.MemorySendChannel[StreamItem]] = {}
        self.reserved = 0
        self.accepting = True
        self._pending = 0  # data bytes queued in h2 since the writer last took its buffer
        self._writing = 0
        self.progress = trio.Event()
        self._wake = trio.Event()
        self._idle = trio.CancelScope()
        self._scope = trio.CancelScope()
        self._on_closed = on_closed

    def has_room(self) -> bool:
        limit = min(self.limits.max_streams, self.h2.remote_settings.max_concurrent_streams)
        return self.accepting and not self._idle.cancel_called and self.reserved < limit

    def reserve(self) -> None:
        self.reserved += 1
        self._idle.deadline = math.inf

    def release(self) -> None:
        self.reserved -= 1
        if self.reserved == 0:
            if self.accepting:
                self._idle.deadline = trio.current_time() + self.limits.idle_timeout
            else:
                self.close()

    @property
    def unsent(self) -> int:
        """The writer's backlog: bytes queued in h2 or being written to the socket."""
        return self._pending + self._writing

    def queued(self, size: int = 0) -> None:
        """Wake the writer after changing h2's state; ``size`` counts data bytes."""
        self._pending += size
        self._wake.set()

    def signal_progress(self) -> None:
        self.progress.set()
        self.progress = trio.Event()

    def close(self) -> None:
        self.accepting = False
        self._scope.cancel()

    async def run(self) -> None:
        """Read and write until the connection fails, idles out, gets a GOAWAY or is closed.

        Never raises: failures reach the streams as `UpstreamError` items.
        """
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    with self._idle:
                        await self._read_loop()
                    nursery.cancel_scope.cancel()
        finally:
            self.accepting = False
            self.socket.socket.close()
            self._fail_streams(UpstreamClosed, "the connection closed")
            self.signal_progress()
            self._on_closed(self)

    def _fail_streams(
        self, kind: type[UpstreamError], reason: str, processed_up_to: float = math.inf
    ) -> None:
        """End every open stream with an error; those above ``processed_up_to`` (a GOAWAY's
        last stream id) were never processed by the upstream."""
        self.accepting = False  # every failure ends the connection: no new streams here
        kind = _ConnectionLost if kind is UpstreamClosed else kind
        for stream_id, channel in self.streams.items():
            if stream_id > processed_up_to:
                error: UpstreamError = _NotProcessed(
                    f"{reason}, before processing the request",
                    target=self.target,
                    request_sent=False,
                )
            else:
                error = kind(reason, target=self.target, request_sent=True)
            channel.send_nowait(error)
        self.streams.clear()

    async def _read_loop(self) -> None:
        while True:
            try:
                data = await self.socket.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._fail_streams(UpstreamClosed, "the upstream closed the connection")
                return
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                message = f"invalid HTTP/2 from the upstream: {error}"
                self._fail_streams(UpstreamProtocolError, message)
                return
            for event in events:
                if isinstance(event, h2.events.ConnectionTerminated):
                    message = f"the upstream sent GOAWAY ({_code_name(event.error_code)})"
                    self._fail_streams(UpstreamClosed, message, event.last_stream_id or 0)
                    return
                self._dispatch(event)
            self._wake.set()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(
            event,
            h2.events.ResponseReceived
            | h2.events.DataReceived
            | h2.events.TrailersReceived
            | h2.events.StreamEnded
            | h2.events.StreamReset,
        ):
            channel = self.streams.get(event.stream_id)
            if channel is not None:
                channel.send_nowait(event)
            elif isinstance(event, h2.events.DataReceived):  # for a stream we abandoned
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.signal_progress()

    async def _write_loop(self) -> None:
        while True:
            data = self.h2.data_to_send()
            if not data:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            self._writing, self._pending = len(data), 0
            try:
                await self.socket.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close()
                return
            self._writing = 0
            self.signal_progress()


class _NotProcessed(UpstreamClosed):
    """A stream the upstream said it never processed (refused, or above a GOAWAY's id)."""


class _ConnectionLost(UpstreamClosed):
    """A stream ended by its connection's end (close, reset, GOAWAY), not by its own reset."""


def _code_name(code: h2.errors.ErrorCodes | int | None) -> str:
    return code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)


class _H2Exchange:
    """One request/response on one stream; a streamed request body is sent from a task."""

    def __init__(self, connection: _H2Connection, deadlines: ExchangeDeadlines) -> None:
        self._connection = connection
        self._h2 = connection.h2
        self._deadlines = deadlines
        self._stream_id = 0
        self.request_sent = False
        self.response: UpstreamResponse | None = None
        self._send_channel, self._items = trio.open_memory_channel[StreamItem](math.inf)
        self._send_failure: UpstreamError | None = None
        self._read_scope: trio.CancelScope | None = None
        self._sender_scope = trio.CancelScope(deadline=deadlines.total)
        self._sender_done: trio.Event | None = None
        self._finishing = False

    def error(self, kind: type[UpstreamError], message: str) -> UpstreamError:
        target = self._connection.target
        return kind(message, target=target, request_sent=self.request_sent)

    def timeout(self, kind: Literal["read", "write"], message: str) -> UpstreamTimeout:
        expired = self._deadlines.expired(kind)
        return UpstreamTimeout(
            f"{expired} timeout {message}",
            target=self._connection.target,
            request_sent=self.request_sent,
            kind=expired,
        )

    async def start(
        self,
        method: bytes,
        path: bytes,
        headers: Sequence[Header],
        body: RequestBody,
        nursery: trio.Nursery,
    ) -> UpstreamResponse:
        connection = self._connection
        self._stream_id = self._h2.get_next_available_stream_id()
        request_headers = _h2_headers(connection.target, method, path, headers, body)
        try:
            self._h2.send_headers(self._stream_id, request_headers, end_stream=not body)
        except h2.exceptions.TooManyStreamsError as error:
            raise self.error(_NotProcessed, "the upstream's stream limit was reached") from error
        connection.streams[self._stream_id] = self._send_channel
        self.request_sent = True
        connection.queued()
        if isinstance(body, bytes):
            if body:
                await self._send_early(body)
        elif body is not None:
            self._sender_done = trio.Event()
            nursery.start_soon(self._send_body, body)
        return await self._receive_head()

    async def finish(self) -> None:
        """Stop the request side, cancel the stream if unfinished, return unread window."""
        done = self._sender_done
        if done is not None and not done.is_set():
            if self.response is not None and self.response.complete:
                with trio.move_on_after(_SENDER_GRACE):
                    await done.wait()
            self._finishing = True
            self._sender_scope.cancel()
            await done.wait()
        connection = self._connection
        if connection.streams.pop(self._stream_id, None) is not None:
            try:
                self._h2.reset_stream(self._stream_id, h2.errors.ErrorCodes.CANCEL)
                connection.queued()
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass  # already closed both ways: nothing to cancel
        while True:
            try:
                item = self._items.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if isinstance(item, h2.events.DataReceived):
                self._acknowledge(item)

    def _acknowledge(self, item: h2.events.DataReceived) -> None:
        """Hand the window back once the caller took the data: that is the backpressure."""
        try:
            self._h2.acknowledge_received_data(item.flow_controlled_length, self._stream_id)
        except h2.exceptions.ProtocolError:
            return  # the connection is closing; its window no longer matters
        self._connection.queued()

    async def _send_data(self, data: bytes, *, end: bool) -> None:
        connection, stream_id = self._connection, self._stream_id
        while data or end:
            if stream_id not in connection.streams:
                raise self.error(UpstreamClosed, "the stream closed while the request was sent")
            try:
                window = self._h2.local_flow_control_window(stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as error:
                message = "the upstream closed the stream before the request body ended"
                raise self.error(UpstreamClosed, message) from error
            if (window > 0 or not data) and connection.unsent < _WRITE_HIGH_WATER:
                size = min(window, self._h2.max_outbound_frame_size)
                chunk, data = data[:size], data[size:]
                self._h2.send_data(stream_id, chunk, end_stream=end and not data)
                connection.queued(len(chunk))
                end = end and bool(data)
                await trio.lowlevel.checkpoint()
                continue
            progress = connection.progress
            with trio.CancelScope(deadline=self._deadlines.silence("write")) as scope:
                await progress.wait()
            if scope.cancelled_caught:
                if connection.unsent:  # the socket itself is stuck: no new streams here
                    connection.accepting = False
                raise self.timeout("write", "while sending the request body")

    async def _send_early(self, body: bytes) -> None:
        """Send, but let a closed stream wait: the upstream may have answered already."""
        try:
            await self._send_data(body, end=True)
        except UpstreamClosed as error:
            self._send_failure = error

    async def _send_body(self, chunks: AsyncIterable[bytes]) -> None:
        assert self._sender_done is not None
        failure: UpstreamError | None = None
        try:
            with self._sender_scope:
                try:
                    async for chunk in chunks:
                        if chunk:
                            await self._send_data(chunk, end=False)
                    await self._send_data(b"", end=True)
                except UpstreamError as error:
                    failure = error
                except Exception as error:
                    failure = self.error(RequestBodyError, f"the request body failed: {error!r}")
                    failure.__cause__ = error
            if self._sender_scope.cancelled_caught and not self._finishing:
                failure = self.timeout("write", "while sending the request body")
        finally:
            self._sender_done.set()
        if failure is not None:
            self._send_failure = failure
            if not isinstance(failure, UpstreamClosed) and self._read_scope is not None:
                self._read_scope.cancel()

    def _raise_send_failure(self) -> None:
        if self._send_failure is not None and not isinstance(self._send_failure, UpstreamClosed):
            raise self._send_failure

    async def _next_item(self) -> h2.events.Event:
        self._raise_send_failure()
        with trio.CancelScope(deadline=self._deadlines.silence("read")) as scope:
            self._read_scope = scope
            try:
                item = await self._items.receive()
            finally:
                self._read_scope = None
        if scope.cancelled_caught:
            self._raise_send_failure()
            raise self.timeout("read", "while waiting for the response")
        if isinstance(item, UpstreamError):
            raise item
        if isinstance(item, h2.events.StreamReset):
            self._connection.streams.pop(self._stream_id, None)
            code = _code_name(item.error_code)
            if item.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                raise self.error(_NotProcessed, "the upstream refused the stream")
            if not item.remote_reset:
                raise self.error(UpstreamProtocolError, f"invalid HTTP/2 stream ({code})")
            raise self.error(UpstreamClosed, f"the upstream reset the stream ({code})")
        return item

    async def _receive_head(self) -> UpstreamResponse:
        item = await self._next_item()
        if not isinstance(item, h2.events.ResponseReceived):
            message = f"expected response headers, got {type(item).__name__}"
            raise self.error(UpstreamProtocolError, message)
        status = 0
        headers: list[Header] = []
        for name, value in item.headers:
            if name == b":status":
                status = int(value)
            elif not name.startswith(b":"):
                headers.append((bytes(name), bytes(value)))
        self.response = UpstreamResponse(status, headers, "2", self._next_chunk)
        # A head that ends the stream ("trailers-only" in gRPC) has no body and no trailers:
        # saying so now lets the front answer without announcing trailers.
        self.response.complete = item.stream_ended is not None
        return self.response

    async def _next_chunk(self) -> bytes | None:
        response = self.response
        assert response is not None
        while not response.complete:
            item = await self._next_item()
            if isinstance(item, h2.events.DataReceived):
                self._acknowledge(item)
                if item.data:
                    return item.data
            elif isinstance(item, h2.events.TrailersReceived):
                response.trailers = [(bytes(n), bytes(v)) for n, v in item.headers]
            elif isinstance(item, h2.events.StreamEnded):
                response.complete = True
        return None


def _may_retry(error: BaseException, method: bytes) -> bool:
    """Whether a stream that failed before its response may go again, once: when the upstream
    said it did not process it, or, like HTTP/1.1's reuse race, when the connection ended
    under an idempotent request (a GOAWAY, a close)."""
    if isinstance(error, _NotProcessed):
        return True
    return isinstance(error, _ConnectionLost) and method in IDEMPOTENT_METHODS


def _h2_headers(
    target: UpstreamTarget,
    method: bytes,
    path: bytes,
    headers: Sequence[Header],
    body: RequestBody,
) -> list[Header]:
    authority = target.authority
    regular: list[Header] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"host":
            authority = value
        elif lowered in _NOT_FORWARDED or (lowered == b"te" and value.lower() != b"trailers"):
            continue
        elif lowered != b"content-length" or not isinstance(body, bytes):
            regular.append((lowered, value))
    pseudo = [(b":method", method), (b":scheme", b"http"), (b":authority", authority)]
    pseudo.append((b":path", path))
    if isinstance(body, bytes):
        regular.append((b"content-length", str(len(body)).encode("ascii")))
    return pseudo + regular


class H2TargetPool:
    """The h2c connections to one target; `UpstreamPool` creates one per target."""

    def __init__(self, target: UpstreamTarget, limits: PoolLimits, nursery: trio.Nursery) -> None:
        self.target = target
        self.limits = limits
        self._nursery = nursery
        self._connections: list[_H2Connection] = []
        self._connecting = False
        self._room = trio.Event()
        self._waiting = 0
        self._opened = 0

    def stats(self) -> TargetStats:
        return TargetStats(
            in_flight=sum(c.reserved for c in self._connections),
            waiting=self._waiting,
            idle=sum(1 for c in self._connections if c.reserved == 0),
            connections_opened=self._opened,
        )

    @asynccontextmanager
    async def request(
        self,
        method: bytes,
        path: bytes,
        headers: Sequence[Header],
        body: RequestBody,
        deadlines: ExchangeDeadlines,
    ) -> AsyncIterator[UpstreamResponse]:
        retried = False
        while True:
            connection = await self._reserve(deadlines)
            exchange = _H2Exchange(connection, deadlines)
            try:
                response = await exchange.start(method, path, headers, body, self._nursery)
                break
            except BaseException as error:
                await self._end(connection, exchange)
                if retried or not is_replayable(body) or not _may_retry(error, method):
                    raise
                retried = True
        try:
            yield response
        finally:
            await self._end(connection, exchange)

    async def aclose(self) -> None:
        for connection in list(self._connections):
            connection.close()

    async def _end(self, connection: _H2Connection, exchange: _H2Exchange) -> None:
        with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
            await exchange.finish()
        if exchange.response is not None:
            exchange.response.detach()
        connection.release()
        self._signal_room()

    def _signal_room(self) -> None:
        self._room.set()
        self._room = trio.Event()

    async def _reserve(self, deadlines: ExchangeDeadlines) -> _H2Connection:
        phase = "pool"
        with trio.CancelScope(deadline=deadlines.connect) as scope:
            while True:
                for connection in self._connections:
                    if connection.has_room():
                        connection.reserve()
                        return connection
                if not self._connecting and len(self._connections) < self.limits.max_connections:
                    phase = "connect"
                    connection = await self._open()
                    connection.reserve()
                    return connection
                room = self._room
                self._waiting += 1
                try:
                    await room.wait()
                finally:
                    self._waiting -= 1
        assert scope.cancelled_caught
        kind = deadlines.expired("connect" if phase == "connect" else "pool")
        raise UpstreamTimeout(
            f"{kind} timeout getting an HTTP/2 stream",
            target=self.target,
            request_sent=False,
            kind=kind,
        )

    async def _open(self) -> _H2Connection:
        self._connecting = True
        try:
            stream = await trio.open_tcp_stream(self.target.host, self.target.port)
        except OSError as error:
            message = f"connect failed: {connect_failure(error)}"
            raise UpstreamConnectError(message, target=self.target, request_sent=False) from error
        finally:
            self._connecting = False
            self._signal_room()
        connection = _H2Connection(self.target, stream, self.limits, self._forget)
        self._connections.append(connection)
        self._opened += 1
        self._nursery.start_soon(connection.run)
        return connection

    def _forget(self, connection: _H2Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
        self._signal_room()
