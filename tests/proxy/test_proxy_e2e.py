"""The proxy end to end: real processes for upstreams, agents and the proxy itself."""

from __future__ import annotations

import socket

import httpx
import pytest
import trio

from tests.proxy.e2e import ProxyKit, wait_until

EXAMPLE = "sentinel_agents.example"


@pytest.fixture
def kit(short_dir):
    return ProxyKit(short_dir)


def two_upstreams(kit: ProxyKit) -> None:
    kit.upstream(
        "pool",
        kit.upstream_process("u1"),
        kit.upstream_process("u2"),
        balance="round_robin",
        retries=2,
    )
    kit.upstream("solo", kit.upstream_process("u3"))


async def test_routing_by_path_method_header_and_host(kit):
    two_upstreams(kit)
    kit.routes += [
        {"id": "exact", "path": "/who", "upstream": "solo"},
        {"id": "post-only", "path_prefix": "/a", "methods": ["POST"], "upstream": "solo"},
        {
            "id": "by-header",
            "path_prefix": "/b",
            "headers": {"x-tenant": "blue"},
            "upstream": "solo",
        },
        {
            "id": "by-host",
            "path_prefix": "/",
            "host": "*.example.test",
            "upstream": "solo",
            "priority": 10,
        },
        {"id": "regex", "path_regex": "/r/[0-9]+", "upstream": "solo"},
        {"id": "rest", "path_prefix": "/", "upstream": "pool"},
    ]
    async with kit.run() as (_, _, client):
        assert (await client.get("/who")).text == "u3"
        assert (await client.post("/a")).text == "u3"
        assert (await client.get("/a")).text in ("u1", "u2")
        assert (await client.get("/b", headers={"x-tenant": "blue"})).text == "u3"
        assert (await client.get("/b", headers={"x-tenant": "red"})).text in ("u1", "u2")
        assert (await client.get("/a", headers={"host": "shop.example.test"})).text == "u3"
        assert (await client.get("/r/42")).text == "u3"
        assert (await client.get("/r/x")).text in ("u1", "u2")


async def test_no_route_is_404_and_forwarding_headers_are_set(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.routes.append({"id": "api", "path_prefix": "/api", "upstream": "solo"})
    async with kit.run() as (_, _, client):
        missing = await client.get("/elsewhere")
        assert missing.status_code == 404 and missing.headers["x-request-id"]
        echo = (
            await client.get(
                "/api/echo?q=1", headers={"x-forwarded-for": "6.6.6.6", "x-request-id": "spoofed"}
            )
        ).json()
        headers = echo["headers"]
        assert headers["x-forwarded-for"] == "127.0.0.1"  # an untrusted claim is replaced
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-host"] == f"127.0.0.1:{kit.port}"
        assert headers["x-request-id"] != "spoofed" and len(headers["x-request-id"]) == 36
        assert echo["query"] == "q=1"


async def test_round_robin_spreads_over_targets(kit):
    two_upstreams(kit)
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "pool"})
    async with kit.run() as (_, _, client):
        seen = [(await client.get("/who")).text for _ in range(10)]
        assert seen.count("u1") == 5 and seen.count("u2") == 5


async def test_a_dead_target_is_ejected_retried_around_and_comes_back(kit):
    two_upstreams(kit)
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "pool"})
    async with kit.run() as (sup, _, client):
        await sup.stop("u1")
        # connect errors are retried on the other target: no request fails
        answers = [await client.get("/who") for _ in range(20)]
        assert {r.status_code for r in answers} == {200}
        assert {r.text for r in answers} == {"u2"}

        async def u1_marked_down() -> bool:
            status = (await client.get(f"{kit.admin}/status")).json()
            targets = status["upstreams"]["pool"]["targets"]
            return not next(
                t for t in targets if t["target"].endswith(str(kit.upstream_ports["u1"]))
            )["available"]

        await wait_until(u1_marked_down)
        await sup.start("u1")

        async def u1_serves_again() -> bool:
            return "u1" in {(await client.get("/who")).text for _ in range(4)}

        await wait_until(u1_serves_again)


async def test_all_targets_down_gives_a_clean_error(kit):
    kit.upstream("solo", kit.upstream_process("u3"), retries=0)
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    async with kit.run() as (sup, _, client):
        await sup.stop("u3")
        answer = await client.get("/who")
        assert answer.status_code in (502, 503)


async def test_agent_blocks_mutates_headers_and_names_itself(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.agent("example", EXAMPLE)
    kit.proxy_extra["agents"] = ["example"]
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    async with kit.run() as (_, _, client):
        blocked = await client.get("/admin/users")
        assert blocked.status_code == 403
        assert blocked.headers["x-sentinel-decided-by"] == "example"
        assert "forbidden by the example agent" in blocked.text
        allowed = await client.get("/echo")
        assert allowed.status_code == 200
        assert allowed.json()["headers"]["x-sentinel-example"] == "checked"  # request op
        assert allowed.headers["x-content-type-options"] == "nosniff"  # response op
        metrics = (await client.get(f"{kit.admin}/metrics")).text
        assert 'sentinel_proxy_blocked_total{agent="example"' in metrics


async def test_body_inspection_blocks_on_the_body(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.agent("example", EXAMPLE)
    kit.proxy_extra["agents"] = ["example"]
    kit.routes.append({"id": "forms", "path_prefix": "/", "upstream": "solo", "inspect_body": True})
    async with kit.run() as (_, _, client):
        bad = await client.post("/echo", content=b"name=<script>alert(1)</script>")
        assert bad.status_code == 403
        good = await client.post("/echo", content=b"name=alice")
        assert good.status_code == 200 and good.json()["body_bytes"] == 10


async def test_agent_failure_modes_when_the_agent_is_down(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.agent("example", EXAMPLE, failure_mode="open")
    kit.routes += [
        {
            "id": "strict",
            "path_prefix": "/strict",
            "upstream": "solo",
            "agents": ["example"],
            "failure_mode": "closed",
        },
        {"id": "lenient", "path_prefix": "/", "upstream": "solo", "agents": ["example"]},
    ]
    async with kit.run() as (sup, _, client):
        assert (await client.get("/strict/who")).status_code == 200
        await sup.stop("example")
        open_answer = await client.get("/who")
        assert open_answer.status_code == 200  # fail-open: let through
        closed = await client.get("/strict/who")
        assert closed.status_code == 503  # fail-closed: refused
        assert closed.headers["x-sentinel-decided-by"] == "example"
        await sup.start("example")

        async def reconnected() -> bool:
            return (await client.get("/strict/who")).status_code == 200

        await wait_until(reconnected)  # the link reconnects by itself


async def test_an_agent_sending_garbage_is_dropped_and_the_proxy_is_unharmed(kit, short_dir):
    kit.upstream("solo", kit.upstream_process("u3"))
    garbage = short_dir / "garbage.sock"
    kit.proxy_extra["agents"] = ["junk"]
    kit.tables.append(
        "[agents.junk]\n"
        f'command = ["/bin/sh", "-c", "exec sleep 600"]\n'
        f'socket = "{garbage}"\nsocket_activation = false\nreadiness = {{ notify = false }}\n'
        'failure_mode = "open"\ntimeout = "200ms"'
    )
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    listener = socket.socket(socket.AF_UNIX)
    accepted = []

    async def serve_junk() -> None:
        listener.bind(str(garbage))
        listener.listen()
        listener.setblocking(False)
        sock = trio.socket.from_stdlib_socket(listener)
        while True:
            conn, _ = await sock.accept()
            accepted.append(conn)
            await conn.send(b"\x00\x00\x00\x05\xffjunk!" * 4)  # not a handshake at all

    async with kit.run() as (_, _, client), trio.open_nursery() as nursery:
        nursery.start_soon(serve_junk)
        for _ in range(5):
            assert (await client.get("/who")).status_code == 200
        status = (await client.get(f"{kit.admin}/status")).json()
        assert status["agents"]["junk"]["connected"] is False
        assert status["agents"]["junk"]["last_error"]
        nursery.cancel_scope.cancel()
    listener.close()


async def test_limits_and_request_smuggling_are_refused(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.proxy_extra["limits"] = {"max_body": 1000, "max_headers": 20}
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    async with kit.run() as (_, _, client):
        too_big = await client.post("/echo", content=b"x" * 5000)
        assert too_big.status_code == 413
        many = await client.get("/echo", headers={f"x-h{i}": "v" for i in range(30)})
        assert many.status_code == 431
        traversal = await client.get("/static/%2e%2e/%2e%2e/etc/passwd")
        assert traversal.status_code == 400

        def raw(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", kit.port), timeout=5) as s:
                s.sendall(request)
                return s.recv(4096)

        smuggle = (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        answer = await trio.to_thread.run_sync(raw, smuggle)
        assert answer.startswith(b"HTTP/1.1 400")


async def test_http2_cleartext_and_streaming_a_large_response(kit):
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    async with (
        kit.run() as (_, _, _client),
        httpx.AsyncClient(http1=False, http2=True, base_url=kit.url) as h2,
    ):
        answer = await h2.get("/echo")
        assert answer.http_version == "HTTP/2"
        assert answer.json()["name"] == "u3"
        big = await h2.get("/big?bytes=5000000")
        assert big.status_code == 200 and len(big.content) == 5_000_000


def self_signed(directory) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


async def test_tls_listener_negotiates_http2_with_alpn(kit, short_dir):
    from tests.proxy.e2e import free_port

    kit.upstream("solo", kit.upstream_process("u3"))
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    cert, key = self_signed(short_dir)
    tls_port = free_port()
    kit.proxy_extra["tls"] = {"cert": cert, "key": key, "listen": [f"127.0.0.1:{tls_port}"]}
    async with (
        kit.run() as (_, _, _client),
        httpx.AsyncClient(
            http2=True, verify=False, base_url=f"https://127.0.0.1:{tls_port}"
        ) as tls,
    ):
        answer = await tls.get("/echo")
        assert answer.http_version == "HTTP/2"
        assert answer.json()["headers"]["x-forwarded-proto"] == "https"


async def test_websocket_pass_through(kit):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    kit.upstream("solo", kit.upstream_process("u3"))
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "solo"})
    async with kit.run():
        stream = await trio.open_tcp_stream("127.0.0.1", kit.port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="localhost", target="/ws")))
        events: list = []
        with trio.fail_after(10):
            while not any(isinstance(e, AcceptConnection) for e in events):
                ws.receive_data(await stream.receive_some(65536))
                events += list(ws.events())
            await stream.send_all(ws.send(TextMessage(data="ping")))
            texts: list[str] = []
            while not texts:
                ws.receive_data(await stream.receive_some(65536))
                texts += [e.data for e in ws.events() if isinstance(e, TextMessage)]
        assert texts == ["u3:ping"]
        await stream.aclose()


async def test_reload_swaps_routes_without_dropping_requests(kit):
    kit.upstream("pool", kit.upstream_process("u1"))
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.routes.append({"id": "rest", "path_prefix": "/", "upstream": "pool"})
    async with kit.run() as (sup, _, client):
        assert (await client.get("/who")).text == "u1"
        failures: list[str] = []
        done = trio.Event()

        async def hammer() -> None:
            while not done.is_set():
                answer = await client.get("/who")  # one keep-alive connection, reused
                if answer.status_code != 200:
                    failures.append(answer.text)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hammer)
            kit.routes[-1]["upstream"] = "solo"
            kit.write()
            changes = await sup.reload(kit.plan_now())  # what `sentinel-stack reload` does
            assert "^proxy" in changes  # told to reload in place, not restarted

            async def switched() -> bool:
                return (await client.get("/who")).text == "u3"

            await wait_until(switched)
            done.set()
        assert failures == []
        assert sup.runner("proxy").lifecycle.restarts == 0


async def test_a_slow_agent_times_out_by_failure_mode_and_trips_its_breaker(kit):
    import sys
    from pathlib import Path

    slow = str(Path(__file__).resolve().parents[1] / "slowagent.py")
    kit.upstream("solo", kit.upstream_process("u3"))
    kit.tables.append(
        f'[agents.slow]\ncommand = ["{sys.executable}", "{slow}"]\n'
        'env = { SLOW_AGENT_DELAY = "2" }\ntimeout = "100ms"\nfailure_mode = "open"\n'
        'breaker = { failures = 3, recovery = "500ms" }'
    )
    kit.routes += [
        {
            "id": "closed",
            "path_prefix": "/slow/closed",
            "upstream": "solo",
            "agents": ["slow"],
            "failure_mode": "closed",
        },
        {"id": "open", "path_prefix": "/", "upstream": "solo", "agents": ["slow"]},
    ]
    async with kit.run() as (_, _, client):
        started = trio.current_time()
        lenient = await client.get("/slow/who")
        assert lenient.status_code == 200  # fail-open: the 2 s agent is not waited for
        assert trio.current_time() - started < 1.5
        strict = await client.get("/slow/closed/who")
        assert strict.status_code == 503
        await client.get("/slow/who")  # third timeout in a row: the breaker opens
        status = (await client.get(f"{kit.admin}/status")).json()
        assert status["agents"]["slow"]["breaker"] == "open"
        fast = await client.get("/who")  # breaker open: not even asked, let through
        assert fast.status_code == 200
        metrics = (await client.get(f"{kit.admin}/metrics")).text
        assert 'sentinel_proxy_agent_breaker_state{agent="slow"} 2.0' in metrics

        async def closed_again() -> bool:
            await client.get("/who")  # a fast request is the half-open probe
            body = (await client.get(f"{kit.admin}/status")).json()
            return bool(body["agents"]["slow"]["breaker"] == "closed")

        await wait_until(closed_again)
