"""Response trailers through the proxy: an HTTP/2 client that sent ``te: trailers`` gets the
h2c upstream's trailers (gRPC's status lives there); the upstream gets ``te: trailers``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sentinel_stack.proxy.trailers import plan_trailers, trailer_block
from tests.proxy.e2e import free_port
from tests.proxy.grpcish import GrpcishUpstream, grpc_frame, h2_call
from tests.proxy.proxyproc import proxy_config, run_proxy

GRPC = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]


async def test_grpc_trailers_reach_an_http2_client(short_dir: Path, nursery: trio.Nursery) -> None:
    upstream = GrpcishUpstream()
    await nursery.start(upstream.serve)
    port, admin = free_port(), free_port()
    config = proxy_config(port, admin, f"h2c://127.0.0.1:{upstream.port}")
    async with run_proxy(short_dir, config, port, admin):
        answer = await h2_call(port, b"/demo.Echo/Say", grpc_frame(b"hello"), GRPC)
        assert dict(answer.headers)[b":status"] == b"200"
        assert answer.data == grpc_frame(b"hello") + grpc_frame(b"and one more")
        assert answer.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"all good")]
        assert upstream.requests[-1][b"te"] == b"trailers"

        # gRPC "trailers-only" (the status in a head that ends the stream) arrives as a head
        # and a trailer block: hypercorn cannot end a stream with its head
        answer = await h2_call(port, b"/demo.Echo/Missing", grpc_frame(b"x"), GRPC)
        assert b"grpc-status" not in dict(answer.headers)
        assert answer.trailers == [(b"grpc-status", b"5"), (b"grpc-message", b"no such thing")]
        assert answer.data == b""

        # announced, but the upstream sent none: HTTP/2 has no empty trailer block
        answer = await h2_call(port, b"/plain", b"", GRPC)
        request_id = dict(answer.headers)[b"x-request-id"]
        assert answer.data == b"plain" and answer.trailers == [(b"x-request-id", request_id)]

        # a client that did not ask gets none, and the upstream is not asked either
        answer = await h2_call(port, b"/demo.Echo/Say", grpc_frame(b"hi"), GRPC[:1])
        assert answer.data == grpc_frame(b"hi") + grpc_frame(b"and one more")
        assert answer.trailers is None
        assert b"te" not in upstream.requests[-1]


async def test_an_http11_client_asking_for_trailers_gets_the_body(
    short_dir: Path, nursery: trio.Nursery
) -> None:
    upstream = GrpcishUpstream()
    await nursery.start(upstream.serve)
    port, admin = free_port(), free_port()
    config = proxy_config(port, admin, f"h2c://127.0.0.1:{upstream.port}")
    async with run_proxy(short_dir, config, port, admin), httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/demo.Echo/Say",
            content=grpc_frame(b"h1"),
            headers={"content-type": "application/grpc", "te": "trailers"},
        )
        assert response.status_code == 200  # HTTP/1.1 through hypercorn: trailers dropped
        assert response.content == grpc_frame(b"h1") + grpc_frame(b"and one more")


async def test_a_real_grpc_unary_call_through_the_proxy(short_dir: Path) -> None:
    grpc = pytest.importorskip("grpc")  # the `test` extra installs grpcio

    def fail(request: bytes, context: Any) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")

    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(lambda request, context: b"echo:" + request),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", handlers),))
    upstream_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port, admin = free_port(), free_port()
    config = proxy_config(port, admin, f"h2c://127.0.0.1:{upstream_port}")
    try:
        async with run_proxy(short_dir, config, port, admin) as proxy:
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]
            )
            with channel:
                say = channel.unary_unary("/demo.Echo/Say")
                assert await trio.to_thread.run_sync(lambda: say(b"hi", timeout=10)) == b"echo:hi"
                failing = channel.unary_unary("/demo.Echo/Fail")
                with pytest.raises(grpc.RpcError) as raised:
                    await trio.to_thread.run_sync(lambda: failing(b"x", timeout=10))
                assert raised.value.code() == grpc.StatusCode.NOT_FOUND
                assert raised.value.details() == "no such greeting"
            await proxy.wait_records(2)
            assert [r["status"] for r in proxy.records] == [200, 200]
            assert all(r["protocol"] == "HTTP/2" for r in proxy.records)
    finally:
        server.stop(None)


def test_trailer_plan() -> None:
    head = [("content-type", "application/grpc"), ("grpc-status", "5"), ("Grpc-Message", "no")]
    plan = plan_trailers(head, client_takes=True, upstream_http2=True, ended_with_head=True)
    assert plan.announce and plan.head == head[:1] and plan.moved == head[1:]
    assert trailer_block(plan, [], "rid") == head[1:]
    plain = [("content-type", "text/plain")]
    plan = plan_trailers(plain, client_takes=True, upstream_http2=True, ended_with_head=True)
    assert not plan.announce and plan.head == plain  # a 204 or a HEAD answer: nothing to add
    plan = plan_trailers(plain, client_takes=True, upstream_http2=True, ended_with_head=False)
    assert plan.announce and trailer_block(plan, [], "rid") == [("x-request-id", "rid")]
    assert trailer_block(plan, [("x-sum", "1")], "rid") == [("x-sum", "1")]
    for takes, http2 in ((False, True), (True, False)):
        plan = plan_trailers(head, client_takes=takes, upstream_http2=http2, ended_with_head=True)
        assert not plan.announce and plan.head == head
