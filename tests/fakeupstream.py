"""A scriptable HTTP upstream for proxy tests (never shipped): hypercorn, trio worker.

/who → its name; /status/N → that status; /slow?s=0.5 → waits; /echo → the request
as JSON (method, path, headers, body size); /big?bytes=N → N bytes, streamed;
/ws → WebSocket echo. READY=1 once listening (h2c prior knowledge accepted too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sentinel_stack.child.sdnotify import notify

NAME = "upstream"


async def respond(send: Any, status: int, body: bytes, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": f"{NAME}:{message['text']}"})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode())
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path.endswith("/who") or path in ("/", "/a", "/b") or path.startswith("/r/"):
        await respond(send, 200, NAME.encode())
    elif path.startswith("/status/"):
        await respond(send, int(path.rsplit("/", 1)[1]), NAME.encode())
    elif path == "/slow":
        await trio.sleep(float(query.get("s", ["0.5"])[0]))
        await respond(send, 200, NAME.encode())
    elif path == "/big":
        size = int(query.get("bytes", ["1000000"])[0])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        block = b"x" * 65536
        sent = 0
        while sent < size:
            chunk = block[: size - sent]
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": sent < size})
    else:  # /echo and anything else
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        data = {
            "name": NAME,
            "method": scope["method"],
            "path": path,
            "raw_path": scope.get("raw_path", b"").decode(),
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body_bytes": len(body),
            "http_version": scope["http_version"],
        }
        await respond(
            send,
            200,
            json.dumps(data).encode(),
            [(b"content-type", b"application/json"), (b"x-upstream", NAME.encode())],
        )


async def main(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
        notify("READY=1")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="upstream")
    args = parser.parse_args()
    NAME = args.name
    trio.run(main, args.port)
