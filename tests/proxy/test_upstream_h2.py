"""HTTP/2 (h2c prior knowledge) through the upstream pool, against real servers on loopback.

Hypercorn speaks h2c when a connection opens with the HTTP/2 preface, so the same kind of
upstream as for HTTP/1.1 serves multiplexing, gRPC-style trailers, duplex streaming and flow
control; a raw server built on h2 plays the refusals (REFUSED_STREAM, GOAWAY) that trigger
the pool's one retry.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
import trio

from sentinel_stack.proxy.upstream_pool import (
    PoolLimits,
    RequestBodyError,
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamPool,
    UpstreamTarget,
    UpstreamTimeout,
    UpstreamTimeouts,
    open_upstream_pool,
)
from tests.proxy.gcwatch import nothing_left_for_gc
from tests.proxy.test_upstream_pool import AppState, serve_lifespan, start_hypercorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CHUNK = b"y" * 65536
GRPC = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]


def make_app(state: AppState) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        assert scope["http_version"] == "2"
        state.client_ports.add(scope["client"][1])
        path, query = scope["path"], parse_qs(scope["query_string"].decode())
        start = {"type": "http.response.start", "status": 200, "headers": []}
        if path == "/hello":
            await send(start)
            await send({"type": "http.response.body", "body": b"hello"})
        elif path == "/echo":  # a gRPC-style duplex stream: each message echoed as it comes
            grpc_headers = [(b"content-type", b"application/grpc")]
            await send({**start, "headers": grpc_headers, "trailers": True})
            while True:
                message = await receive()
                if message.get("body"):
                    await send(
                        {"type": "http.response.body", "body": message["body"], "more_body": True}
                    )
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.body", "body": b""})
            trailers = [(b"grpc-status", b"0"), (b"grpc-message", b"fine")]
            await send({"type": "http.response.trailers", "headers": trailers})
        elif path == "/count":
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            await send(start)
            await send({"type": "http.response.body", "body": str(total).encode()})
        elif path == "/stream":
            remaining = int(query["size"][0])
            await send(start)
            while remaining:
                chunk = CHUNK[: min(remaining, len(CHUNK))]
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/wait":
            await state.release.wait()
            await send(start)
            await send({"type": "http.response.body", "body": b"released"})

    return app


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> tuple[UpstreamTarget, AppState]:
    state = AppState()
    port = await start_hypercorn(nursery, make_app(state))
    return UpstreamTarget("127.0.0.1", port, "h2c"), state


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    async with open_upstream_pool() as pool:
        yield pool


async def get(pool: UpstreamPool, target: UpstreamTarget, path: bytes) -> tuple[int, bytes]:
    async with pool.request(target, b"GET", path) as response:
        return response.status, await response.read()


async def test_concurrent_requests_share_one_connection(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    results: list[tuple[int, bytes]] = []

    async def one() -> None:
        results.append(await get(pool, target, b"/hello"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    async with pool.request(target, b"GET", b"/hello") as response:
        assert response.http_version == "2"
        assert await response.read() == b"hello"
    assert results == [(200, b"hello")] * 20
    assert len(state.client_ports) == 1
    assert pool.stats(target).connections_opened == 1
    assert pool.in_flight(target) == 0


async def test_an_ended_exchange_is_freed_without_the_cycle_collector(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, _ = upstream
    with nothing_left_for_gc("_H2Exchange"):
        for _ in range(20):
            assert await get(pool, target, b"/hello") == (200, b"hello")


async def test_grpc_style_duplex_stream_with_trailers(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, _ = upstream
    to_send, outbox = trio.open_memory_channel[bytes](0)

    async def messages() -> AsyncIterator[bytes]:
        async for message in outbox:
            yield message

    async with pool.request(target, b"POST", b"/echo", GRPC, messages()) as response:
        assert response.status == 200
        chunks = response.body()
        with trio.fail_after(5):  # each answer arrives before the next message is sent
            for message in (b"ping-1", b"ping-2", b"ping-3"):
                await to_send.send(message)
                assert await chunks.__anext__() == message
            await to_send.aclose()
            assert [chunk async for chunk in chunks] == []
        assert response.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"fine")]
        assert response.complete


async def test_large_bodies_flow_both_ways(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    size = 20 * 1024 * 1024
    received = 0
    async with pool.request(target, b"GET", b"/stream?size=%d" % size) as response:
        async for chunk in response.body():
            received += len(chunk)
    assert received == size

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(160):  # 10 MiB: many times the upstream's 64 KiB initial window
            yield CHUNK

    async with pool.request(target, b"POST", b"/count", body=upload()) as response:
        assert await response.read() == b"10485760"
    async with pool.request(target, b"POST", b"/count", body=CHUNK * 32) as response:
        assert await response.read() == b"2097152"
    assert len(state.client_ports) == 1


async def test_an_abandoned_stream_is_reset_and_the_connection_kept(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    async with pool.request(target, b"GET", b"/stream?size=50000000") as response:
        assert await response.body().__anext__()
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 1


async def test_a_failing_request_body_resets_only_its_stream(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream

    async def broken() -> AsyncIterator[bytes]:
        yield b"start"
        raise OSError("client went away")

    with pytest.raises(RequestBodyError) as caught:
        async with pool.request(target, b"POST", b"/count", body=broken()):
            pass
    assert isinstance(caught.value.__cause__, OSError)
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 1


async def test_stream_limit_and_in_flight_count(
    upstream: tuple[UpstreamTarget, AppState],
) -> None:
    target, state = upstream
    results: list[bytes] = []
    limits = PoolLimits(max_connections=1, max_streams=2)
    async with open_upstream_pool(limits) as pool:

        async def one() -> None:
            async with pool.request(target, b"GET", b"/wait") as response:
                results.append(await response.read())

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
            with trio.fail_after(5):  # the first waiters wait for the connect, then for room
                while (pool.in_flight(target), pool.stats(target).waiting) != (2, 3):
                    await trio.sleep(0.005)
            with pytest.raises(UpstreamTimeout) as caught:
                async with pool.request(
                    target, b"GET", b"/hello", timeouts=UpstreamTimeouts(connect=0.05)
                ):
                    pass
            assert (caught.value.kind, caught.value.request_sent) == ("pool", False)
            state.release.set()
    assert results == [b"released"] * 5
    assert len(state.client_ports) == 1


async def test_read_timeout_resets_only_its_stream(
    pool: UpstreamPool, upstream: tuple[UpstreamTarget, AppState]
) -> None:
    target, state = upstream
    with pytest.raises(UpstreamTimeout) as caught:
        async with pool.request(target, b"GET", b"/wait", timeouts=UpstreamTimeouts(read=0.1)):
            pass
    assert (caught.value.kind, caught.value.request_sent) == ("read", True)
    assert await get(pool, target, b"/hello") == (200, b"hello")
    assert len(state.client_ports) == 1


async def test_idle_connections_close_after_the_idle_timeout(
    upstream: tuple[UpstreamTarget, AppState],
) -> None:
    target, _ = upstream
    async with open_upstream_pool(PoolLimits(idle_timeout=0.1)) as pool:
        assert await get(pool, target, b"/hello") == (200, b"hello")
        assert pool.stats(target).idle == 1
        with trio.fail_after(5):
            while pool.stats(target).idle:
                await trio.sleep(0.01)
        assert await get(pool, target, b"/hello") == (200, b"hello")
        assert pool.stats(target).connections_opened == 2


async def test_connect_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamConnectError) as caught:
            await get(pool, UpstreamTarget("127.0.0.1", port, "h2c"), b"/")
    assert caught.value.request_sent is False


# --- a raw h2 server for the refusals -------------------------------------------------------


async def start_refusing_server(
    nursery: trio.Nursery, refuse: Callable[[h2.connection.H2Connection, int, int], bool]
) -> tuple[UpstreamTarget, list[int]]:
    """Answers every stream with 200 ``ok``, except those ``refuse`` handles first: it gets
    the connection, the connection's number and the stream's number on it."""
    accepted: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        accepted.append(len(accepted) + 1)
        number, streams = accepted[-1], 0
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        async with stream:
            while data := await stream.receive_some(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams += 1
                        if not refuse(conn, number, streams):
                            conn.send_headers(event.stream_id, [(":status", "200")])
                            conn.send_data(event.stream_id, b"ok", end_stream=True)
                await stream.send_all(conn.data_to_send())

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return UpstreamTarget("127.0.0.1", port, "h2c"), accepted


async def test_a_refused_stream_is_retried_once(nursery: trio.Nursery) -> None:
    def refuse_first(conn: h2.connection.H2Connection, number: int, stream: int) -> bool:
        if stream == 1 and number == 1:
            conn.reset_stream(1, h2.errors.ErrorCodes.REFUSED_STREAM)
            return True
        return False

    target, accepted = await start_refusing_server(nursery, refuse_first)
    # Retried even for a POST: a refused stream was not processed (RFC 9113 §8.7).
    async with (
        open_upstream_pool() as pool,
        pool.request(target, b"POST", b"/", body=b"once") as response,
    ):
        assert await response.read() == b"ok"
    assert accepted == [1]


async def test_goaway_above_the_stream_is_retried_on_a_new_connection(
    nursery: trio.Nursery,
) -> None:
    def goaway_on_first(conn: h2.connection.H2Connection, number: int, stream: int) -> bool:
        if number == 1:
            conn.close_connection(last_stream_id=0)
            return True
        return False

    target, accepted = await start_refusing_server(nursery, goaway_on_first)
    async with open_upstream_pool() as pool:
        assert await get(pool, target, b"/") == (200, b"ok")
    assert accepted == [1, 2]


async def test_a_stream_reset_after_processing_is_not_retried(nursery: trio.Nursery) -> None:
    seen: list[int] = []

    def reset_all(conn: h2.connection.H2Connection, number: int, stream: int) -> bool:
        seen.append(stream)
        conn.reset_stream(stream * 2 - 1, h2.errors.ErrorCodes.INTERNAL_ERROR)
        return True

    target, accepted = await start_refusing_server(nursery, reset_all)
    async with open_upstream_pool() as pool:
        with pytest.raises(UpstreamClosed) as caught:
            await get(pool, target, b"/")
    assert caught.value.request_sent is True
    assert "INTERNAL_ERROR" in str(caught.value)
    assert (accepted, seen) == ([1], [1])


@pytest.mark.parametrize(("method", "attempts"), [(b"GET", [1, 2]), (b"POST", [1])])
async def test_goaway_under_a_processed_stream_is_retried_only_if_idempotent(
    nursery: trio.Nursery, method: bytes, attempts: list[int]
) -> None:
    def goaway_on_first(conn: h2.connection.H2Connection, number: int, stream: int) -> bool:
        if number == 1:  # like hypercorn at keep_alive_max_requests: GOAWAY, stream dropped
            conn.close_connection(last_stream_id=1)
            return True
        return False

    target, accepted = await start_refusing_server(nursery, goaway_on_first)
    async with open_upstream_pool() as pool:
        if method == b"GET":
            assert await get(pool, target, b"/") == (200, b"ok")
        else:
            with pytest.raises(UpstreamClosed) as caught:
                async with pool.request(target, method, b"/", body=b"pay"):
                    pass
            assert caught.value.request_sent is True
    assert accepted == attempts


async def test_a_slow_reader_holds_back_the_upstream(nursery: trio.Nursery) -> None:
    """The stream's window is handed back only as the caller reads: the upstream must pause.

    (Hypercorn buffers an app's output without bound when the window is shut, so this
    upstream is a raw h2 server that sends exactly as far as flow control allows.)
    """
    size = 8 * 1024 * 1024
    sent = [0]

    async def flood(stream: trio.SocketStream) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        stream_id = 0
        async with stream:
            while sent[0] < size:
                window = conn.local_flow_control_window(stream_id) if stream_id else 0
                if window:
                    chunk = min(window, conn.max_outbound_frame_size, size - sent[0])
                    conn.send_data(stream_id, b"z" * chunk, end_stream=sent[0] + chunk == size)
                    sent[0] += chunk
                else:
                    for event in conn.receive_data(await stream.receive_some(65536)):
                        if isinstance(event, h2.events.RequestReceived):
                            stream_id = event.stream_id
                            conn.send_headers(stream_id, [(":status", "200")])
                await stream.send_all(conn.data_to_send())
            await stream.receive_some(65536)

    listeners = await nursery.start(partial(trio.serve_tcp, flood, 0, host="127.0.0.1"))
    target = UpstreamTarget("127.0.0.1", listeners[0].socket.getsockname()[1], "h2c")
    async with open_upstream_pool() as pool, pool.request(target, b"GET", b"/") as response:
        with trio.fail_after(5):
            while sent[0] < 512 * 1024:
                await trio.sleep(0.01)
        await trio.sleep(0.2)  # "it stopped" has no event to await: give it time to overrun
        assert sent[0] <= 1024 * 1024  # the stream window the pool advertises
        received = 0
        async for chunk in response.body():
            received += len(chunk)
    assert received == size
