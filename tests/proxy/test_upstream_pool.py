"""The HTTP/1.1 upstream pool against real servers on loopback.

A hypercorn app (the kind of upstream the proxy fronts) covers reuse, limits, streaming and
framing; a raw Trio TCP server scripts what well-behaved servers never do: closing idle
connections, answering garbage, stalling, answering before the request body ends.
"""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import h11
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from sentinel_stack.proxy.upstream_pool import (
    Header,
    PoolLimits,
    RequestBody,
    RequestBodyError,
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamPool,
    UpstreamProtocolError,
    UpstreamTarget,
    UpstreamTimeout,
    UpstreamTimeouts,
    open_upstream_pool,
)
from tests.proxy.gcwatch import nothing_left_for_gc

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CHUNK = b"x" * 65536


@dataclass
class AppState:
    """What the test app saw: one client port per TCP connection it accepted."""

    client_ports: set[int] = field(default_factory=set)
    release: trio.Event = field(default_factory=trio.Event)


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _read_all(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def serve_lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def make_app(state: AppState) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        state.client_ports.add(scope["client"][1])
        path, query = scope["path"], parse_qs(scope["query_string"].decode())
        if path == "/hello":
            await _start(send, 200, [(b"content-length", b"5"), (b"x-test", b"yes")])
            await send({"type": "http.response.body", "body": b"hello"})
        elif path == "/stream":
            remaining = int(query["size"][0])
            await _start(send, 200, [(b"content-length", str(remaining).encode())])
            while remaining:
                chunk = CHUNK[: min(remaining, len(CHUNK))]
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/count":
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            framing = [v for n, v in scope["headers"] if n == b"transfer-encoding"]
            await _start(send, 200, [])
            reply = f"{total} {framing[0].decode() if framing else 'length'}"
            await send({"type": "http.response.body", "body": reply.encode()})
        elif path == "/status":
            code = int(query["code"][0])
            await _start(send, code, [(b"etag", b'"v1"')] if code == 304 else [])
            await send({"type": "http.response.body", "body": b""})
        elif path == "/close":
            await _start(send, 200, [(b"connection", b"close"), (b"content-length", b"3")])
            await send({"type": "http.response.body", "body": b"bye"})
        elif path == "/wait":
            await state.release.wait()
            await _start(send, 200, [])
            await send({"type": "http.response.body", "body": b"released"})
        else:
            await _read_all(receive)
            await _start(send, 404, [])
            await send({"type": "http.response.body", "body": b""})

    return app


async def start_hypercorn(
    nursery: trio.Nursery, app: Callable[[Scope, Receive, Send], Awaitable[None]]
) -> int:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    # Plain-dict ASGI types, not hypercorn's TypedDicts.
    binds = await nursery.start(partial(serve, app, config, mode="asgi"))  # type: ignore[arg-type]
    return int(binds[0].rsplit(":", 1)[1])


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> tuple[UpstreamTarget, AppState]:
    state = AppState()
    port = await start_hypercorn(nursery, make_app(state))
    return UpstreamTarget("127.0.0.1", port), state


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    async with open_upstream_pool() as pool:
        yield pool


async def get(pool: UpstreamPool, target: UpstreamTarget, path: bytes) -> tuple[int, bytes]:
    async with pool.request(target, b"GET", path) as response:
        return response.status, await response.read()


# --- reuse, limits, eviction --------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    for _ in range(5):
        async with pool.request(target, b"GET", b"/hello") as response:
            assert response.status == 200
            assert response.http_version == "1.1"
            assert (b"x-test", b"yes") in response.headers
            assert await response.read() == b"hello"
    assert len(state.client_ports) == 1
    assert pool.stats(target).connections_opened == 1
    assert pool.stats(target).idle == 1


async def test_an_ended_exchange_is_freed_without_the_cycle_collector(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    # The response used to hold its exchange's reader and the exchange its response: a cycle
    # per request that only gc could free (docs/BENCHMARKS.md, "Added latency").
    target, _ = upstream
    with nothing_left_for_gc("_H1Exchange"):
        for _ in range(20):
            assert await get(pool, target, b"/hello") == (200, b"hello")


async def test_reading_a_body_after_its_request_block_is_an_error(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, _ = upstream
    async with pool.request(target, b"GET", b"/stream?size=1000000") as response:
        assert await response.body().__anext__()
    with pytest.raises(RuntimeError, match="inside the `request` block"):
        await response.read()
    async with pool.request(target, b"GET", b"/hello") as response:
        assert await response.read() == b"hello"
    assert await response.read() == b""  # complete: the end, as before


async def test_response_not_read_to_the_end_closes_the_connection(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    async with pool.request(target, b"GET", b"/stream?size=1000000") as response:
        assert await response.body().__anext__()
    assert pool.stats(target).idle == 0
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 2


async def test_connection_close_from_the_server_is_not_reused(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    assert await get(pool, target, b"/close") == (200, b"bye")
    assert pool.stats(target).idle == 0
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 2


async def test_concurrency_limit_and_in_flight_count(
    upstream: tuple[UpstreamTarget, AppState],
) -> None:
    target, state = upstream
    results: list[bytes] = []
    async with open_upstream_pool(PoolLimits(max_connections=2)) as pool:

        async def one() -> None:
            async with pool.request(target, b"GET", b"/wait") as response:
                results.append(await response.read())

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
            with trio.fail_after(5):
                while len(state.client_ports) < 2 or pool.stats(target).waiting < 3:
                    await trio.sleep(0.005)
            stats = pool.stats(target)
            assert (stats.in_flight, stats.waiting) == (2, 3)
            assert pool.in_flight(target) == 2
            state.release.set()
        assert results == [b"released"] * 5
        assert len(state.client_ports) == 2
        assert pool.in_flight(target) == 0


async def test_waiting_for_a_slot_is_bounded_by_the_connect_timeout(
    upstream: tuple[UpstreamTarget, AppState],
) -> None:
    target, _ = upstream
    async with (
        open_upstream_pool(PoolLimits(max_connections=1)) as pool,
        pool.request(target, b"GET", b"/hello") as held,
    ):
        with pytest.raises(UpstreamTimeout) as caught:
            async with pool.request(
                target, b"GET", b"/hello", timeouts=UpstreamTimeouts(connect=0.1)
            ):
                pass
        await held.read()
    assert caught.value.kind == "pool"
    assert caught.value.request_sent is False


async def test_max_idle_bounds_kept_connections(upstream: tuple[UpstreamTarget, AppState]) -> None:
    target, state = upstream
    async with open_upstream_pool(PoolLimits(max_idle=1)) as pool:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(get, pool, target, b"/wait")
            with trio.fail_after(5):
                while len(state.client_ports) < 3:
                    await trio.sleep(0.005)
            state.release.set()
        assert pool.stats(target).idle == 1


# --- the raw server: behaviour a well-behaved upstream never shows -------------------------


@dataclass
class RawServer:
    target: UpstreamTarget
    accepted: int = 0
    requests: list[h11.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    client_closed: trio.Event = field(default_factory=trio.Event)
    # The number of each connection the server has closed, in order.
    closed: trio.MemorySendChannel[int] = field(init=False)
    closed_numbers: trio.MemoryReceiveChannel[int] = field(init=False)

    def __post_init__(self) -> None:
        self.closed, self.closed_numbers = trio.open_memory_channel[int](100)


Script = Callable[[trio.SocketStream, h11.Connection, RawServer, int], Awaitable[None]]


async def start_raw_server(nursery: trio.Nursery, script: Script) -> RawServer:
    server: RawServer

    async def handle(stream: trio.SocketStream) -> None:
        server.accepted += 1
        number = server.accepted
        async with stream:
            await script(stream, h11.Connection(h11.SERVER), server, number)
        server.closed.send_nowait(number)

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    server = RawServer(UpstreamTarget("127.0.0.1", port))
    return server


async def read_request(stream: trio.SocketStream, conn: h11.Connection, server: RawServer) -> bool:
    """Read one request (and its body) into ``server``; False at EOF before a request."""
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data and conn.their_state is h11.IDLE:
                server.client_closed.set()
                return False
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            server.requests.append(event)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            server.bodies.append(body)
            return True
        else:
            raise AssertionError(event)


async def respond(
    stream: trio.SocketStream, conn: h11.Connection, body: bytes, *, close: bool = False
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    data = conn.send(h11.Response(status_code=200, headers=headers))
    data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    await stream.send_all(data)
    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
        conn.start_next_cycle()


async def serve_keep_alive(
    stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
) -> None:
    while await read_request(stream, conn, server):
        await respond(stream, conn, b"ok %d" % number)


async def test_idle_connections_are_evicted_after_the_idle_timeout(nursery: trio.Nursery) -> None:
    server = await start_raw_server(nursery, serve_keep_alive)
    async with open_upstream_pool(PoolLimits(idle_timeout=0.2)) as pool:
        assert await get(pool, server.target, b"/") == (200, b"ok 1")
        started = trio.current_time()
        with trio.fail_after(5):
            await server.client_closed.wait()
        assert trio.current_time() - started >= 0.19
        assert pool.stats(server.target).idle == 0


async def test_idle_connection_closed_by_the_server_is_detected(nursery: trio.Nursery) -> None:
    async def answer_once(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        await read_request(stream, conn, server)
        await respond(stream, conn, b"ok %d" % number)  # keep-alive, then closes at rest

    server = await start_raw_server(nursery, answer_once)
    async with open_upstream_pool() as pool:
        for number in (1, 2):
            # A POST: the at-rest check means nothing is ever sent on the dead connection.
            async with pool.request(server.target, b"POST", b"/", body=b"data") as response:
                assert await response.read() == b"ok %d" % number
            with trio.fail_after(5):  # closed on loopback: the FIN is already here
                assert await server.closed_numbers.receive() == number
    assert server.accepted == 2
    assert server.bodies == [b"data", b"data"]


async def close_on_second_request(
    stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
) -> None:
    """The race the at-rest check cannot see: the close crosses the request on the wire."""
    await read_request(stream, conn, server)
    await respond(stream, conn, b"ok %d" % number)
    if number == 1:
        await stream.receive_some(65536)
        return
    while await read_request(stream, conn, server):
        await respond(stream, conn, b"ok %d" % number)


async def test_reuse_race_is_retried_once_for_an_idempotent_request(
    nursery: trio.Nursery,
) -> None:
    server = await start_raw_server(nursery, close_on_second_request)
    async with open_upstream_pool() as pool:
        assert await get(pool, server.target, b"/") == (200, b"ok 1")
        assert await get(pool, server.target, b"/") == (200, b"ok 2")
    assert server.accepted == 2


async def test_reuse_race_is_not_retried_for_a_post(nursery: trio.Nursery) -> None:
    server = await start_raw_server(nursery, close_on_second_request)
    async with open_upstream_pool() as pool:
        assert await get(pool, server.target, b"/") == (200, b"ok 1")
        with pytest.raises(UpstreamClosed) as caught:
            async with pool.request(server.target, b"POST", b"/", body=b"pay"):
                pass
    assert caught.value.request_sent is True
    assert server.accepted == 1


async def test_garbage_is_a_protocol_error(nursery: trio.Nursery) -> None:
    async def garbage(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        await read_request(stream, conn, server)
        await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await stream.receive_some(100)

    server = await start_raw_server(nursery, garbage)
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamProtocolError) as caught:
            await get(pool, server.target, b"/")
    assert caught.value.request_sent is True


async def test_a_stalled_server_hits_the_read_timeout(nursery: trio.Nursery) -> None:
    async def stall(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        await read_request(stream, conn, server)
        await trio.sleep_forever()

    server = await start_raw_server(nursery, stall)
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamTimeout) as caught:
            async with pool.request(
                server.target, b"GET", b"/", timeouts=UpstreamTimeouts(read=0.1)
            ):
                pass
    assert (caught.value.kind, caught.value.request_sent) == ("read", True)


async def test_an_upstream_that_stops_reading_hits_the_write_timeout(
    nursery: trio.Nursery,
) -> None:
    async def deaf(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        await trio.sleep_forever()

    server = await start_raw_server(nursery, deaf)
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamTimeout) as caught:
            async with pool.request(
                server.target,
                b"PUT",
                b"/",
                body=CHUNK * 512,  # 32 MiB: more than both sockets' buffers hold
                timeouts=UpstreamTimeouts(write=0.2),
            ):
                pass
    assert (caught.value.kind, caught.value.request_sent) == ("write", True)


async def test_a_trickling_body_hits_the_total_timeout(nursery: trio.Nursery) -> None:
    async def trickle(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        await read_request(stream, conn, server)
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=[])))
        while True:
            await stream.send_all(conn.send(h11.Data(data=b".")))
            await trio.sleep(0.02)

    server = await start_raw_server(nursery, trickle)
    async with open_upstream_pool() as pool:
        timeouts = UpstreamTimeouts(read=2.0, total=0.3)  # each byte is in time
        async with pool.request(server.target, b"GET", b"/", timeouts=timeouts) as response:
            received = 0
            with pytest.raises(UpstreamTimeout) as caught:
                async for chunk in response.body():
                    received += len(chunk)
    assert caught.value.kind == "total"
    assert received > 3


async def test_connect_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamConnectError) as caught:
            await get(pool, UpstreamTarget("127.0.0.1", port), b"/")
    assert caught.value.request_sent is False
    assert "refused" in str(caught.value).lower()


async def test_early_response_while_the_body_streams(nursery: trio.Nursery) -> None:
    async def reject_upload(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        while not isinstance(event := conn.next_event(), h11.Request):
            conn.receive_data(await stream.receive_some(65536))
        server.requests.append(event)
        await stream.send_all(
            conn.send(h11.Response(status_code=413, headers=[(b"connection", b"close")]))
            + conn.send(h11.EndOfMessage())
        )
        await stream.send_eof()
        with trio.move_on_after(2):  # a lingering close: drain, so no RST eats the answer
            while await stream.receive_some(65536):
                pass

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield CHUNK

    server = await start_raw_server(nursery, reject_upload)
    async with open_upstream_pool() as pool:
        with trio.fail_after(5):
            async with pool.request(server.target, b"PUT", b"/", body=endless()) as response:
                assert response.status == 413
                assert await response.read() == b""
        assert pool.stats(server.target).idle == 0


async def test_request_framing(nursery: trio.Nursery) -> None:
    server = await start_raw_server(nursery, serve_keep_alive)

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cd"):
            yield part

    async with open_upstream_pool() as pool:
        target = server.target
        cases: list[tuple[RequestBody, list[Header]]] = [
            (b"bytes", []),
            (chunks(), []),
            (chunks(), [(b"content-length", b"4")]),
            (None, []),
        ]
        for body, headers in cases:
            async with pool.request(target, b"POST", b"/", headers, body) as response:
                await response.read()
    framing = [
        {k: v for k, v in r.headers if k in (b"content-length", b"transfer-encoding")}
        for r in server.requests
    ]
    assert framing == [
        {b"content-length": b"5"},
        {b"transfer-encoding": b"chunked"},
        {b"content-length": b"4"},
        {b"content-length": b"0"},
    ]
    assert server.bodies == [b"bytes", b"abcd", b"abcd", b""]
    assert all((b"host", target.authority) in r.headers for r in server.requests)
    assert server.accepted == 1


async def test_chunked_response_trailers(nursery: trio.Nursery) -> None:
    async def with_trailers(
        stream: trio.SocketStream, conn: h11.Connection, server: RawServer, number: int
    ) -> None:
        while await read_request(stream, conn, server):
            head = h11.Response(status_code=200, headers=[(b"transfer-encoding", b"chunked")])
            data = conn.send(head) + conn.send(h11.Data(data=b"part1,"))
            data += conn.send(h11.Data(data=b"part2"))
            data += conn.send(h11.EndOfMessage(headers=[(b"x-checksum", b"abc")]))
            await stream.send_all(data)
            conn.start_next_cycle()

    server = await start_raw_server(nursery, with_trailers)
    async with open_upstream_pool() as pool:
        for _ in range(2):
            async with pool.request(server.target, b"GET", b"/") as response:
                assert response.trailers == []
                assert await response.read() == b"part1,part2"
                assert response.trailers == [(b"x-checksum", b"abc")]
    assert server.accepted == 1


async def test_a_failing_request_body_is_reported(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, _ = upstream

    async def broken() -> AsyncIterator[bytes]:
        yield b"start"
        raise OSError("client went away")

    with pytest.raises(RequestBodyError) as caught:
        async with pool.request(target, b"POST", b"/count", body=broken()):
            pass
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.request_sent is True


# --- streaming and message framing through hypercorn --------------------------------------


async def test_large_response_streams_with_bounded_memory(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, _ = upstream
    size = 50 * 1024 * 1024
    received = chunks = 0
    tracemalloc.start()
    try:
        async with pool.request(target, b"GET", b"/stream?size=%d" % size) as response:
            tracemalloc.reset_peak()
            async for chunk in response.body():
                received += len(chunk)
                chunks += 1
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert chunks > 100
    assert peak < 8 * 1024 * 1024  # server and client together: far below the 50 MB


async def test_request_body_streams_from_an_async_generator(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream

    async def produce() -> AsyncIterator[bytes]:
        for _ in range(160):  # 10 MiB
            yield CHUNK
            await trio.lowlevel.checkpoint()

    async with pool.request(target, b"POST", b"/count", body=produce()) as response:
        assert await response.read() == b"10485760 chunked"
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        (b"HEAD", b"/hello", 200),
        (b"GET", b"/status?code=204", 204),
        (b"GET", b"/status?code=304", 304),
    ],
)
async def test_responses_without_a_body_keep_the_connection(
    pool: UpstreamPool,
    upstream: tuple[UpstreamTarget, AppState],
    method: bytes,
    path: bytes,
    status: int,
) -> None:
    target, state = upstream
    async with pool.request(target, method, path) as response:
        assert response.status == status
        assert await response.read() == b""
        assert response.complete
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 1
