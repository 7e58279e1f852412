"""A gRPC-shaped h2c upstream and an HTTP/2 client that sees trailers, on the h2 library alone.

The upstream answers by path: ``/demo.Echo/Say`` streams two length-prefixed messages and
ends with ``grpc-status``/``grpc-message`` trailers; ``/demo.Echo/Missing`` is a gRPC
"trailers-only" answer (status in the head, which ends the stream); ``/plain`` ends with
its data and no trailers. It keeps each request's headers so a test can see what the
proxy forwarded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import trio

Headers = list[tuple[bytes, bytes]]


def grpc_frame(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


@dataclass
class GrpcishUpstream:
    port: int = 0
    requests: list[dict[bytes, bytes]] = field(default_factory=list)

    async def serve(self, *, task_status: trio.TaskStatus[int]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        await stream.send_all(conn.data_to_send())
        bodies: dict[int, bytes] = {}
        heads: dict[int, dict[bytes, bytes]] = {}
        async for data in stream:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    heads[event.stream_id] = dict(event.headers)
                    self.requests.append(heads[event.stream_id])
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    bodies[event.stream_id] += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    head = heads[event.stream_id]
                    self._answer(conn, event.stream_id, head[b":path"], bodies[event.stream_id])
            await stream.send_all(conn.data_to_send())

    @staticmethod
    def _answer(conn: h2.connection.H2Connection, sid: int, path: bytes, body: bytes) -> None:
        head = [(b":status", b"200"), (b"content-type", b"application/grpc")]
        if path == b"/demo.Echo/Missing":
            conn.send_headers(
                sid, [*head, (b"grpc-status", b"5"), (b"grpc-message", b"no such thing")], True
            )
        elif path == b"/plain":
            conn.send_headers(sid, [(b":status", b"200"), (b"content-length", b"5")])
            conn.send_data(sid, b"plain", end_stream=True)
        else:
            conn.send_headers(sid, head)
            conn.send_data(sid, body)  # the request's own message, echoed
            conn.send_data(sid, grpc_frame(b"and one more"))
            trailers = [(b"grpc-status", b"0"), (b"grpc-message", b"all good")]
            conn.send_headers(sid, trailers, end_stream=True)


@dataclass
class H2Answer:
    headers: Headers
    data: bytes
    trailers: Headers | None  # None: no trailer block came


async def h2_call(port: int, path: bytes, body: bytes, headers: Headers) -> H2Answer:
    """One POST over a fresh h2c (prior knowledge) connection; the whole answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    request = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{port}".encode()),
        (b":path", path),
        *headers,
    ]
    conn.send_headers(1, request)
    conn.send_data(1, body, end_stream=True)
    answer = H2Answer([], b"", None)
    async with stream:
        await stream.send_all(conn.data_to_send())
        while True:
            data = await stream.receive_some(65536)
            if not data:
                raise AssertionError("the proxy closed the connection mid-answer")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answer.headers = [(bytes(n), bytes(v)) for n, v in event.headers]
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                    answer.data += event.data
                elif isinstance(event, h2.events.TrailersReceived):
                    answer.trailers = [(bytes(n), bytes(v)) for n, v in event.headers]
                elif isinstance(event, h2.events.StreamEnded):
                    return answer
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"the proxy reset the stream: {event.error_code!r}")
            await stream.send_all(conn.data_to_send())
