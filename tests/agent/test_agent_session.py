"""AgentServer and AgentConnection together over a real Unix socket, in one Trio run."""

from __future__ import annotations

import socket

import msgspec
import pytest
import trio
import trio.testing
from agent_helpers import GatedAgent, request, running_server, short_tmpdir

from sentinel_stack.agent import (
    AgentDraining,
    AgentEventError,
    AgentHealth,
    AgentServer,
    AgentUnavailable,
    ConnectionLost,
    FunctionAgent,
    agent_connection,
    connect_agent,
)
from sentinel_stack.protocol import (
    AgentDecision,
    AgentHello,
    Block,
    Configure,
    Decision,
    Encoding,
    EventError,
    FrameDecoder,
    GoAway,
    HandshakeError,
    Health,
    Hello,
    Limits,
    RequestComplete,
    RequestHeaders,
    ResponseHeaders,
    UnknownMessageType,
    allow,
    encode_message,
)

DEADLINE = 5  # seconds; every wait below is on a condition, bounded by this


async def test_decisions_come_back_matched_by_correlation_id_out_of_order() -> None:
    agent = GatedAgent()
    results: dict[int, Decision] = {}
    async with running_server(agent) as (_, path, _), connect_agent(path) as conn:
        assert conn.agent.name == "gated" and conn.agent.encoding is Encoding.MSGPACK

        async def ask(cid: int) -> None:
            results[cid] = await conn.decide(request(cid, "/hold"))

        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                for cid in (1, 2, 3):
                    nursery.start_soon(ask, cid)
                    await agent.wait_entered(cid)
                for cid in (3, 1, 2):
                    agent.release(cid)
            blocked = await conn.decide(request(4, "/admin"))
    assert {cid: d.audit.reason for cid, d in results.items() if d.audit} == {
        1: "1",
        2: "2",
        3: "3",
    }
    assert isinstance(blocked.action, Block) and blocked.action.status == 403


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_handshake_negotiates_what_the_proxy_offers(encoding: str) -> None:
    hello = Hello(name="test-proxy", encodings=(encoding,), features=())
    async with running_server(GatedAgent()) as (_, path, _), connect_agent(path, hello) as conn:
        assert conn.agent.encoding == encoding
        assert conn.agent.features == ()
        assert conn.agent.events == ("request_headers", "request_complete")
        with trio.fail_after(DEADLINE):
            assert (await conn.decide(request(1))).audit is not None
            assert await conn.ping() >= 0


async def test_caller_giving_up_cancels_the_handler_and_frees_the_slot() -> None:
    agent = GatedAgent()
    options = {"limits": Limits(max_concurrency=1)}
    async with running_server(agent, **options) as (server, path, _), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                waiting = trio.CancelScope()

                async def ask() -> None:
                    with waiting:
                        await conn.decide(request(1, "/hold"))

                nursery.start_soon(ask)
                await agent.wait_entered(1)
                waiting.cancel()
            await agent.wait_cancelled(1)
            # The single slot is free again on both sides: no over_capacity.
            assert (await conn.decide(request(2))).audit is not None
            assert server.in_flight == 0


async def test_proxy_cancel_ends_the_wait_with_a_typed_error() -> None:
    agent = GatedAgent()
    async with running_server(agent) as (_, path, _), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:

                async def ask() -> None:
                    with pytest.raises(AgentEventError) as caught:
                        await conn.decide(request(1, "/hold"))
                    assert caught.value.code == "cancelled"

                nursery.start_soon(ask)
                await agent.wait_entered(1)
                await conn.cancel(1, "client went away")
            await agent.wait_cancelled(1)
        assert conn.open_requests == 0


async def test_failing_hook_is_an_event_error_and_the_connection_survives() -> None:
    async with running_server(GatedAgent()) as (server, path, _), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            with pytest.raises(AgentEventError, match="rule file vanished") as caught:
                await conn.decide(request(1, "/boom"))
            assert caught.value.code == "agent_error"
            assert (await conn.decide(request(2))).audit is not None
        assert (server.errors, server.served) == (1, 1)


async def test_unsubscribed_events_are_allowed_without_asking() -> None:
    async with running_server(GatedAgent()) as (_, path, _), connect_agent(path) as conn:
        response = ResponseHeaders(correlation_id=1, status=200)
        assert await conn.decide(response) == Decision()


async def test_request_complete_reaches_subscribed_agents() -> None:
    agent = GatedAgent()
    async with running_server(agent) as (_, path, _), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            await conn.decide(request(1))
            await conn.complete(RequestComplete(1, status=200, duration_us=850))
            # Ordered stream: once this answer arrives the agent has read the complete.
            await conn.decide(request(2))
            await trio.testing.wait_all_tasks_blocked()
    assert agent.completed == [RequestComplete(1, status=200, duration_us=850)]


class Thresholds(msgspec.Struct, forbid_unknown_fields=True):
    limit: int
    window_s: float = 1.0


async def test_configure_applies_typed_config_and_reports_bad_keys() -> None:
    agent = FunctionAgent("ratelimit", "0.3")
    applied: list[Thresholds] = []

    @agent.configure
    async def configure(update: Configure) -> None:
        applied.append(update.decode(Thresholds))

    @agent.request_headers
    async def check(request: RequestHeaders) -> Decision:
        return allow()

    @agent.health_check
    def health() -> AgentHealth:
        return AgentHealth("degraded", "no config yet") if not applied else AgentHealth()

    options = {"health_interval": 0.01}
    async with running_server(agent, **options) as (_, path, _), connect_agent(path) as conn:
        assert conn.agent.events == ("request_headers",)
        with trio.fail_after(DEADLINE):
            assert (await conn.next_health()).status == "degraded"
            ok = await conn.configure(Thresholds(limit=10), revision=4)
            bad = await conn.configure({"limit": "ten"}, revision=5)
            while (report := await conn.next_health()).status != "ok":
                pass
    assert ok.ok and ok.revision == 4
    assert not bad.ok and "$.limit" in bad.error
    assert applied == [Thresholds(limit=10)]
    assert report.config_revision == 4


async def test_drain_finishes_in_flight_requests_then_stops() -> None:
    agent = GatedAgent()
    async with running_server(agent) as (server, path, stopped), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                answers: list[Decision] = []

                async def ask() -> None:
                    answers.append(await conn.decide(request(1, "/hold")))

                nursery.start_soon(ask)
                await agent.wait_entered(1)
                server.drain()
                await conn.wait_draining()
                with pytest.raises(AgentDraining):
                    await conn.decide(request(2))
                agent.release(1)
            assert answers[0].audit is not None
            assert not conn.closed
            await conn.complete(RequestComplete(1, status=200))
            assert conn.closed
            await stopped.wait()


async def test_drain_timeout_cuts_what_is_left() -> None:
    agent = GatedAgent()
    options = {"drain_timeout": 0}
    async with (
        running_server(agent, **options) as (server, path, stopped),
        connect_agent(path) as conn,
    ):
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:

                async def ask() -> None:
                    with pytest.raises(ConnectionLost):
                        await conn.decide(request(1, "/hold"))

                nursery.start_soon(ask)
                await agent.wait_entered(1)
                server.drain()
            await stopped.wait()
            await agent.wait_cancelled(1)


async def test_refused_handshake_and_missing_agent_are_typed() -> None:
    async with running_server(GatedAgent()) as (_, path, _):
        with pytest.raises(HandshakeError, match="no common protocol version"):
            async with connect_agent(path, Hello(versions=(99,))):
                pass
        with pytest.raises(AgentUnavailable):
            async with connect_agent(path.with_name("nobody.sock")):
                pass


async def raw_handshake(stream: trio.SocketStream, hello: Hello) -> FrameDecoder:
    decoder = FrameDecoder()
    await stream.send_all(encode_message(hello))
    messages = []
    while not messages:
        messages = decoder.feed(await stream.receive_some())
    assert isinstance(messages[0], AgentHello)
    return decoder


async def receive_one(stream: trio.SocketStream, decoder: FrameDecoder) -> object:
    while True:
        data = await stream.receive_some()
        if not data:
            decoder.eof()
            return None
        messages = decoder.feed(data)
        if messages:
            assert len(messages) == 1
            return messages[0]


async def test_agent_enforces_its_limits_on_a_misbehaving_proxy() -> None:
    agent = GatedAgent()
    options = {"limits": Limits(max_concurrency=1)}
    hello = Hello(encodings=("json",), features=())
    async with running_server(agent, **options) as (_, path, _):
        stream = await trio.open_unix_socket(str(path))
        with trio.fail_after(DEADLINE):
            decoder = await raw_handshake(stream, hello)
            await stream.send_all(encode_message(request(1, "/hold")))
            await agent.wait_entered(1)
            await stream.send_all(encode_message(request(1, "/hold")))
            assert await receive_one(stream, decoder) == EventError(
                1, "duplicate", "event already being decided"
            )
            await stream.send_all(encode_message(request(2)))
            reply = await receive_one(stream, decoder)
            assert isinstance(reply, EventError) and reply.code == "over_capacity"
            await stream.send_all(b"\x00\x00\x00\x02\xee\x00")
            goaway = await receive_one(stream, decoder)
            assert isinstance(goaway, GoAway) and "0xee" in goaway.reason
            agent.release(1)
            await receive_one(stream, decoder)  # the held request still gets its answer
            assert await receive_one(stream, decoder) is None  # then the agent closes
        await stream.aclose()


@pytest.mark.parametrize("failure", ["dies", "garbage"])
async def test_agent_failure_fails_waiters_with_connection_lost(failure: str) -> None:
    received: list[object] = []
    async with short_tmpdir() as tmp:
        path = tmp / "fake.sock"
        listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await listener.bind(str(path))
        listener.listen()

        async def fake_agent() -> None:
            conn, _ = await listener.accept()
            stream = trio.SocketStream(conn)
            decoder = FrameDecoder()
            await stream.receive_some()
            answer = AgentHello(version=1, name="fake", events=("request_headers",))
            await stream.send_all(encode_message(answer))
            await stream.receive_some()  # the request arrives
            if failure == "garbage":
                await stream.send_all(b"\x00\x00\x00\x01\xee")
                received.append(await receive_one(stream, decoder))
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fake_agent)
            async with connect_agent(path, Hello(encodings=("json",))) as conn:
                with trio.fail_after(DEADLINE), pytest.raises(ConnectionLost) as caught:
                    await conn.decide(request(1))
                assert conn.closed
                with pytest.raises(ConnectionLost):
                    await conn.decide(request(2))
    if failure == "garbage":
        assert isinstance(caught.value.__cause__, UnknownMessageType)
        assert isinstance(received[0], GoAway) and "0xee" in received[0].reason


async def test_message_a_proxy_must_not_send_is_refused_after_answering_in_flight() -> None:
    agent = GatedAgent()
    async with running_server(agent) as (_, path, _):
        stream = await trio.open_unix_socket(str(path))
        with trio.fail_after(DEADLINE):
            decoder = await raw_handshake(stream, Hello(encodings=("json",), features=()))
            await stream.send_all(encode_message(request(1, "/hold")))
            await agent.wait_entered(1)
            await stream.send_all(encode_message(Health()))
            goaway = await receive_one(stream, decoder)
            assert isinstance(goaway, GoAway) and "Health is not sent by a proxy" in goaway.reason
            agent.release(1)
            assert isinstance(await receive_one(stream, decoder), AgentDecision)
            assert await receive_one(stream, decoder) is None
        await stream.aclose()


async def test_many_concurrent_requests_on_one_connection() -> None:
    agent = GatedAgent()
    count = 300
    answers: dict[int, str] = {}
    async with running_server(agent) as (server, path, _), connect_agent(path) as conn:

        async def ask(cid: int) -> None:
            decision = await conn.decide(request(cid, "/hold" if cid % 2 else "/"))
            assert decision.audit is not None
            answers[cid] = decision.audit.reason

        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                for cid in range(count):
                    nursery.start_soon(ask, cid)
                for cid in range(1, count, 2):
                    await agent.wait_entered(cid)
                assert server.in_flight == count // 2
                for cid in reversed(range(1, count, 2)):
                    agent.release(cid)
    assert answers == {cid: str(cid) for cid in range(count)}
    assert server.in_flight == 0


async def test_any_trio_stream_works_not_only_sockets() -> None:
    proxy_side, agent_side = trio.testing.memory_stream_pair()
    server = AgentServer(GatedAgent())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_connection, agent_side)
        async with agent_connection(proxy_side) as conn:
            with trio.fail_after(DEADLINE):
                assert (await conn.decide(request(1, "/admin"))).action == Block(403)
                assert await conn.ping() >= 0


async def test_non_concurrent_agent_decides_one_event_at_a_time() -> None:
    agent = FunctionAgent("sequential")
    agent.concurrent = False
    seen: set[int] = set()
    running = 0

    @agent.request_headers
    async def check(request: RequestHeaders) -> Decision:
        nonlocal running
        running += 1
        assert running == 1
        await trio.lowlevel.checkpoint()  # a chance for others to interleave, if they could
        seen.add(request.correlation_id)
        running -= 1
        return allow()

    async with running_server(agent) as (_, path, _), connect_agent(path) as conn:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                for cid in range(20):
                    nursery.start_soon(conn.decide, request(cid))
    assert seen == set(range(20))
