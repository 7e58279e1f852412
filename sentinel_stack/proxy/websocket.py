"""WebSocket pass-through: the client's ASGI WebSocket bridged to the upstream with wsproto.

The handshake goes through the same route match and agent pipeline as any request (a
block closes the socket with 1008 before it is accepted); after that, messages flow both
ways untouched until either side closes.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from sentinel_stack.protocol import RequestHeaders
from sentinel_stack.proxy.limits import prepare_upstream_headers
from sentinel_stack.proxy.routing import PathRejection, normalize_path

if TYPE_CHECKING:
    from sentinel_stack.asgi import Receive, Scope, Send
    from sentinel_stack.proxy.front import ProxyApp

POLICY_VIOLATION = 1008
UPSTREAM_FAILED = 1011
_SKIP = {
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
}


async def proxy_websocket(app: ProxyApp, scope: Scope, receive: Receive, send: Send) -> None:
    state = app.state
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
    host = next((v for n, v in headers if n == "host"), "")
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    path = normalize_path(raw_path.decode("latin-1"))
    route = (
        None if isinstance(path, PathRejection) else state.routes.match(host, path, "GET", headers)
    )
    group = state.groups.get(route.upstream) if route is not None else None
    if route is None or group is None or isinstance(path, PathRejection):
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        return
    client = scope.get("client") or ("", 0)
    prepared = prepare_upstream_headers(
        headers,
        peer=client[0] or None,
        scheme="ws",
        host=host,
        policy=state.forwarding,
        random_bytes=os.urandom,
    )
    agents = route.agents if route.agents is not None else state.settings.default_agents
    if agents:
        event = RequestHeaders(
            correlation_id=int.from_bytes(os.urandom(6), "big"),
            request_id=prepared.request_id,
            method="GET",
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={n: [v for m, v in headers if m == n] for n, _ in headers},
            client_ip=prepared.client_address or "",
            client_port=client[1] or 0,
            route_id=route.id,
            upstream_id=route.upstream,
            protocol="websocket",
        )
        result = await state.pipeline.consult(agents, event, route.failure_mode)
        if result.merged.is_terminal:
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
    target = group.balancer.pick(group.health.available(trio.current_time()), group.rng)
    if target is None:
        await send({"type": "websocket.close", "code": UPSTREAM_FAILED})
        return
    try:
        with trio.fail_after(group.config.connect_timeout):
            stream = await trio.open_tcp_stream(target.host, target.port)
    except (OSError, trio.TooSlowError):
        await send({"type": "websocket.close", "code": UPSTREAM_FAILED})
        return
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        query = scope.get("query_string", b"")
        extra = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in prepared.headers
            if n.lower() not in _SKIP
        ]
        await stream.send_all(
            ws.send(
                Request(
                    host=host or target.authority.decode(),
                    target=raw_path.decode("latin-1")
                    + (f"?{query.decode('latin-1')}" if query else ""),
                    subprotocols=list(scope.get("subprotocols", [])),
                    extra_headers=extra,
                )
            )
        )
        accepted = await _handshake(stream, ws)
        if accepted is None:
            await send({"type": "websocket.close", "code": UPSTREAM_FAILED})
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept", "subprotocol": accepted.subprotocol})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_client_to_upstream, receive, stream, ws, nursery.cancel_scope)
            nursery.start_soon(_upstream_to_client, send, stream, ws, nursery.cancel_scope)


async def _handshake(stream: trio.abc.Stream, ws: WSConnection) -> AcceptConnection | None:
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return None
        ws.receive_data(bytes(data))
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return event
            if isinstance(event, RejectConnection):
                return None


async def _client_to_upstream(
    receive: Receive, stream: trio.abc.Stream, ws: WSConnection, scope: trio.CancelScope
) -> None:
    while True:
        message: dict[str, Any] = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            outgoing = (
                TextMessage(data=text)
                if text is not None
                else BytesMessage(data=message.get("bytes") or b"")
            )
            await stream.send_all(ws.send(outgoing))
        elif message["type"] == "websocket.disconnect":
            # The upstream may be gone already; the close is a courtesy.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(ws.send(CloseConnection(code=message.get("code", 1000))))
            scope.cancel()
            return


async def _upstream_to_client(
    send: Send, stream: trio.abc.Stream, ws: WSConnection, scope: trio.CancelScope
) -> None:
    while True:
        data = await stream.receive_some(65536)
        if not data:
            await send({"type": "websocket.close", "code": 1000})
            scope.cancel()
            return
        ws.receive_data(bytes(data))
        for event in ws.events():
            if isinstance(event, TextMessage):
                await send({"type": "websocket.send", "text": event.data})
            elif isinstance(event, BytesMessage):
                await send({"type": "websocket.send", "bytes": bytes(event.data)})
            elif isinstance(event, Ping):
                await stream.send_all(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                await send({"type": "websocket.close", "code": event.code})
                scope.cancel()
                return
