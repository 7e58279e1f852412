"""A small, realistic web app to put behind the proxy: a JSON API, a page, health.

Run alone with ``python -m sentinel_stack.demo.upstream --bind 127.0.0.1:8081``; under
the stack it reports READY=1 once it listens, and drains on SIGTERM. With
``--enable-vulnerable-routes`` (only `sentinel-stack demo` passes it) it also serves the
deliberately vulnerable ``/_vuln/`` routes of `sentinel_stack.demo.vulnerable`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from sentinel_stack.asgi import Receive, Scope, Send, respond, serve_lifespan
from sentinel_stack.child.sdnotify import notify
from sentinel_stack.demo.http import is_loopback_host
from sentinel_stack.demo.vulnerable import ENABLE_FLAG, PREFIX, WARNING, VulnerableRoutes

ITEMS = [
    {"id": 1, "name": "keyboard", "price": 49.0},
    {"id": 2, "name": "monitor", "price": 219.0},
    {"id": 3, "name": "headset", "price": 89.5},
]
PAGE = b"""<!doctype html><html><head><title>sentinel demo shop</title></head>
<body><h1>Demo shop</h1><p>Behind the sentinel-stack proxy.</p>
<ul><li><a href="/api/items">/api/items</a></li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>"""


async def _json(send: Send, status: int, payload: object) -> None:
    await respond(send, status, json.dumps(payload).encode(), "application/json")


async def _read_body(receive: Receive, limit: int = 1024 * 1024) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if len(body) > limit or not message.get("more_body"):
            return body


async def shop(scope: Scope, receive: Receive, send: Send) -> None:
    """The ordinary app: what the benign traffic generator exercises."""
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/healthz":
        await _json(send, 200, {"status": "ok", "time": time.time()})
    elif path == "/":
        await respond(send, 200, PAGE, "text/html; charset=utf-8")
    elif path == "/api/items" and method == "GET":
        await _json(send, 200, {"items": ITEMS})
    elif path.startswith("/api/items/") and method == "GET":
        wanted = path.rsplit("/", 1)[-1]
        item = next((i for i in ITEMS if str(i["id"]) == wanted), None)
        await _json(send, 200 if item else 404, item or {"error": "no such item"})
    elif path == "/api/orders" and method == "POST":
        body = await _read_body(receive)
        try:
            order = json.loads(body or b"{}")
        except ValueError:
            await _json(send, 400, {"error": "body is not JSON"})
            return
        await _json(send, 201, {"order": order, "status": "accepted"})
    elif path == "/api/echo":
        body = await _read_body(receive)
        headers = {k.decode(): v.decode(errors="replace") for k, v in scope["headers"]}
        await _json(
            send,
            200,
            {
                "method": method,
                "path": path,
                "query": scope["query_string"].decode(errors="replace"),
                "headers": headers,
                "body_bytes": len(body),
            },
        )
    else:
        await _json(send, 404, {"error": "not found", "path": path})


App = Callable[[Scope, Receive, Send], Awaitable[None]]


def make_app(vulnerable: VulnerableRoutes | None = None) -> App:
    """The shop, plus the ``/_vuln/`` routes (which answer 404 unless enabled)."""
    routes = vulnerable or VulnerableRoutes()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await routes.handle(scope, receive, send)
        else:
            await shop(scope, receive, send)

    return app


app = make_app()


async def main(bind: str, vulnerable: bool = False) -> None:
    application = make_app(VulnerableRoutes(enabled=vulnerable))
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.graceful_timeout = 5.0
    stop = trio.Event()

    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                notify("STOPPING=1")
                stop.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signals)
        binds = await nursery.start(
            lambda task_status: serve(
                application,  # type: ignore[arg-type]  # plain-dict ASGI types, not hypercorn's
                config,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        print(f"demo upstream serving on {', '.join(binds)}", flush=True)
        notify("READY=1", f"STATUS=serving on {bind}")
        await stop.wait()
        # serve returns after draining; then the signal task is done too


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sentinel-stack-demo-upstream", description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:8081", help="host:port to listen on")
    parser.add_argument(
        ENABLE_FLAG,
        dest="vulnerable",
        action="store_true",
        help="serve the DELIBERATELY VULNERABLE /_vuln/ routes (web shell, traversal, SSRF) "
        "to loopback clients; loopback --bind only; for `sentinel-stack demo`",
    )
    args = parser.parse_args(argv)
    if args.vulnerable:
        host = args.bind.rpartition(":")[0]
        if not is_loopback_host(host.strip("[]")):
            parser.error(f"{ENABLE_FLAG} needs a loopback --bind (127.0.0.1 or [::1]), not {host}")
        print(WARNING.format(prefix=PREFIX), file=sys.stderr, flush=True)
    trio.run(main, args.bind, args.vulnerable)


if __name__ == "__main__":
    cli()
