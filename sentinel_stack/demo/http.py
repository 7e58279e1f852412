"""A minimal HTTP/1.1 client (h11 over Trio) for the demo's traffic and attack generators.

Loopback only by design: `loopback_endpoint` refuses any other host, so neither generator can
be pointed at another machine by mistake. One `HttpConnection` is one keep-alive connection,
reopened when the server closes it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

__all__ = ["HttpConnection", "HttpResponse", "NotLoopback", "is_loopback_host", "loopback_endpoint"]

MAX_BODY = 1024 * 1024
Header = tuple[str, str]


class NotLoopback(ValueError):
    """A URL whose host is not a loopback address."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[Header, ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k == lowered), None)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or the name ``localhost`` (no DNS lookup: names are refused)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_endpoint(url: str) -> tuple[str, int, str]:
    """``http://127.0.0.1:8080/x?y`` → (host, port, target). Raises `NotLoopback` (a
    ValueError) for other schemes or hosts, naming the URL."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise NotLoopback(f"{url!r}: only http:// URLs are used by the demo generators")
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise NotLoopback(f"{url!r}: the demo generators only talk to loopback, not {host!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return host, parts.port or 80, target


class HttpConnection:
    """One keep-alive connection to ``host:port``; `request` reconnects when needed.

    A connection idle for ``max_idle`` seconds is not reused: servers close idle keep-alive
    connections (the proxy after 5 s), and reusing one as it closes loses the request.
    """

    def __init__(
        self, host: str, port: int, *, max_body: int = MAX_BODY, max_idle: float = 2.0
    ) -> None:
        if not is_loopback_host(host):
            raise NotLoopback(f"the demo generators only talk to loopback, not {host!r}")
        self.host = host
        self.port = port
        self.max_body = max_body
        self.max_idle = max_idle
        self._idle_since = 0.0
        self._stream: trio.SocketStream | None = None
        self._conn = h11.Connection(h11.CLIENT)

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        self._stream = None

    async def __aenter__(self) -> HttpConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self, method: str, target: str, headers: Sequence[Header] = (), body: bytes = b""
    ) -> HttpResponse:
        """One exchange. OSError / h11 errors propagate; the connection is then dropped."""
        stale = trio.current_time() - self._idle_since > self.max_idle
        if self._stream is None or self._conn.our_state is not h11.IDLE or stale:
            await self.aclose()
            self._stream = await trio.open_tcp_stream(self.host, self.port)
            self._conn = h11.Connection(h11.CLIENT)
        try:
            return await self._exchange(method, target, headers, body)
        except BaseException:
            if self._stream is not None:
                await trio.aclose_forcefully(self._stream)
            self._stream = None
            raise

    async def _exchange(
        self, method: str, target: str, headers: Sequence[Header], body: bytes
    ) -> HttpResponse:
        assert self._stream is not None
        conn = self._conn
        # A name, not the numeric address: the WAF (CRS 920350) flags numeric Host headers,
        # which would make every benign request look like a probe.
        sent = [("host", f"localhost:{self.port}"), *headers]
        if body or method in ("POST", "PUT", "PATCH"):
            sent.append(("content-length", str(len(body))))
        data = conn.send(h11.Request(method=method, target=target, headers=sent))
        if body:
            data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
        data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        await self._stream.send_all(data)
        status, size = 0, 0
        response_headers: tuple[Header, ...] = ()
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self._stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = tuple(
                    (k.decode(), v.decode("latin-1")) for k, v in event.headers
                )
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size <= self.max_body:
                    chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError(f"{self.host}:{self.port} closed mid-response")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self._idle_since = trio.current_time()
        else:  # the server asked to close: reconnect on the next request
            await self.aclose()
        return HttpResponse(status, response_headers, b"".join(chunks))
