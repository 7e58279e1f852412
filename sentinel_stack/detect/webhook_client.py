"""One HTTP(S) POST of a JSON body, h11 over Trio: what the webhook sinks send with.

Why not httpx: it is only a test dependency here, and its sync client in a worker thread
could not be cancelled mid-request, while h11 is already a runtime dependency and Trio has
TLS (the system's CA store via `ssl.create_default_context`). A webhook is one small POST
now and then, so each opens its own connection (``Connection: close``): no pool to keep
healthy. Not supported, by design: redirects, HTTP proxies, HTTP/2.

Errors never carry the URL: a webhook URL is a credential (Slack's holds its token in the
path), so messages name the host at most.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

__all__ = ["PostFailed", "PostResult", "post_json"]

MAX_RESPONSE = 64 * 1024
USER_AGENT = "sentinel-stack-detector"


class PostFailed(Exception):
    """The request did not get an HTTP answer (DNS, connect, TLS, timeout, bad response)."""


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    retry_after: float | None
    body: bytes


_TLS: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _TLS  # built once: loading the CA store costs milliseconds
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


async def post_json(url: str, body: bytes, tls: ssl.SSLContext | None = None) -> PostResult:
    """POST ``body`` as application/json; raises `PostFailed` without an answer. No
    timeout of its own: the caller puts it in a cancel scope (`trio.move_on_after`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PostFailed("the webhook URL must be http:// or https:// with a host")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        return await _exchange(parts.scheme, host, port, target, body, tls)
    except (OSError, trio.BrokenResourceError, ssl.SSLError, h11.ProtocolError) as exc:
        raise PostFailed(f"{type(exc).__name__} talking to {host}:{port}") from None


async def _exchange(
    scheme: str, host: str, port: int, target: str, body: bytes, tls: ssl.SSLContext | None
) -> PostResult:
    stream: trio.abc.Stream
    if scheme == "https":
        stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=tls or _tls(), https_compatible=True
        )
    else:
        stream = await trio.open_tcp_stream(host, port)
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("Host", host if port in (80, 443) else f"{host}:{port}"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("User-Agent", USER_AGENT),
                ("Connection", "close"),
            ],
        )
        data = conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        await stream.send_all(data)
        status, retry_after, received = 0, None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(65536)
                conn.receive_data(bytes(chunk))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                retry_after = _retry_after(dict(event.headers).get(b"retry-after"))
            elif isinstance(event, h11.Data):
                received = (received + bytes(event.data))[:MAX_RESPONSE]
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                if not status:
                    raise PostFailed(f"{host}:{port} closed the connection without an answer")
                return PostResult(status, retry_after, received)


def _retry_after(value: bytes | None) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header (the HTTP-date form is ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.decode("ascii").strip()))
    except ValueError:
        return None
