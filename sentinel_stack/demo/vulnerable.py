"""DELIBERATELY VULNERABLE routes of the demo upstream, for `sentinel-stack demo` and
`scripts/simulate-attacks` (docs/simulations.md).

They give a simulated attacker the footholds real web apps leak: a web shell (`POST
/_vuln/exec` runs an argv), a path traversal (`GET /_vuln/file?path=`) and a server-side
request forgery (`GET /_vuln/fetch?url=`), so the kernel-side detection has something real to
catch. Guard rails, all enforced here:

- off unless the upstream is started with ``--enable-vulnerable-routes`` (only the demo's
  config passes it); when off, every ``/_vuln/`` path is an ordinary 404;
- the upstream refuses that flag unless it binds a loopback address;
- every request must come from loopback: the socket peer and every X-Forwarded-For hop;
- the web shell runs an argv (never ``shell=True``; asking for ``sh -c ...`` is exactly the
  behaviour the detector must flag), with a timeout and without the stack's sd_notify and
  socket-activation variables; the fetch only reaches loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import h11
import trio

from sentinel_stack.asgi import Receive, Scope, Send, respond
from sentinel_stack.demo.http import (
    HttpConnection,
    NotLoopback,
    is_loopback_host,
    loopback_endpoint,
)

__all__ = ["ENABLE_FLAG", "PREFIX", "VulnerableRoutes", "refusal"]

PREFIX = "/_vuln/"
ENABLE_FLAG = "--enable-vulnerable-routes"
WARNING = (
    "WARNING: DELIBERATELY VULNERABLE demo routes are ON ({prefix}exec runs commands, "
    "{prefix}file reads any path, {prefix}fetch makes requests). Loopback clients only. "
    "Use this on a throwaway demo machine, never in front of real users."
)
MAX_OUTPUT = 16 * 1024
MAX_FILE = 64 * 1024
MAX_BODY = 64 * 1024
# Variables a web-shell child must not inherit: it would speak for the upstream to the
# supervisor (sd_notify) or claim its inherited sockets.
_STRIPPED_ENV = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC")


def refusal(enabled: bool, scope: Scope) -> tuple[int, str] | None:
    """Why a ``/_vuln/`` request must not be served, as (status, message); None to serve it.

    Off: 404, the routes do not exist. A peer or forwarded hop off loopback: 403.
    """
    if not enabled:
        return 404, "not found"
    client = scope.get("client")
    if not client or not is_loopback_host(str(client[0])):
        return 403, "the vulnerable demo routes answer loopback clients only"
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-forwarded-for":
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            if not all(is_loopback_host(h) for h in hops):
                return 403, "the vulnerable demo routes answer loopback clients only (forwarded)"
    return None


async def _json(send: Send, status: int, payload: object) -> None:
    await respond(send, status, json.dumps(payload).encode(), "application/json")


async def _body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if len(body) > MAX_BODY or not message.get("more_body"):
            return body


def _text(data: bytes) -> str:
    return data[:MAX_OUTPUT].decode(errors="replace")


@dataclass(frozen=True)
class VulnerableRoutes:
    """The ``/_vuln/`` routes; `handle` serves or refuses one request."""

    enabled: bool = False
    # Where /_vuln/file "serves files from"; a traversal climbs out of it.
    file_root: Path = field(default_factory=lambda: Path(__file__).resolve().parent)
    exec_timeout: float = 20.0
    fetch_timeout: float = 3.0

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(self.enabled, scope)
        if refused is not None:
            status, message = refused
            await _json(send, status, {"error": message, "path": scope["path"]})
            return
        route = (scope["method"], scope["path"].removeprefix(PREFIX))
        query = parse_qs(scope["query_string"].decode(errors="replace"))
        if route == ("GET", "status"):
            await _json(send, 200, self.status())
        elif route == ("POST", "exec"):
            await self._exec(await _body(receive), send)
        elif route == ("GET", "file"):
            await self._file(query.get("path", [""])[0], send)
        elif route == ("GET", "fetch"):
            await self._fetch(query.get("url", [""])[0], send)
        else:
            await _json(send, 404, {"error": "not found", "path": scope["path"]})

    def status(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "pid": os.getpid(),
            "file_root": str(self.file_root),
            "routes": ["POST exec", "GET file?path=", "GET fetch?url=", "GET status"],
        }

    async def _exec(self, body: bytes, send: Send) -> None:
        try:
            request = json.loads(body or b"{}")
            argv = request["argv"]
            timeout = min(float(request.get("timeout", self.exec_timeout)), self.exec_timeout)
        except (ValueError, KeyError, TypeError) as exc:
            await _json(send, 400, {"error": f'send JSON {{"argv": [...]}}: {exc}'})
            return
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            await _json(send, 400, {"error": "argv must be a non-empty list of strings"})
            return
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        try:
            process = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            await _json(send, 500, {"error": f"cannot run {argv[0]!r}: {exc}"})
            return
        outputs: dict[str, bytes] = {"stdout": b"", "stderr": b""}

        async def drain(name: str, stream: trio.abc.ReceiveStream | None) -> None:
            if stream is None:
                return
            async with stream:
                while chunk := await stream.receive_some(65536):
                    if len(outputs[name]) < MAX_OUTPUT:
                        outputs[name] += chunk

        timed_out = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, "stdout", process.stdout)
            nursery.start_soon(drain, "stderr", process.stderr)
            with trio.move_on_after(timeout) as scope:
                await process.wait()
            if scope.cancelled_caught:
                timed_out = True
                process.kill()
                await process.wait()
        await _json(
            send,
            200,
            {
                "pid": process.pid,
                "returncode": process.returncode,
                "timed_out": timed_out,
                "stdout": _text(outputs["stdout"]),
                "stderr": _text(outputs["stderr"]),
            },
        )

    async def _file(self, path: str, send: Send) -> None:
        # The bug on purpose: the user's path is joined, not resolved and checked.
        target = f"{self.file_root}/{path}"
        try:
            with Path(target).open("rb") as file:  # noqa: ASYNC230  # small, blocking on purpose
                data = file.read(MAX_FILE)
        except OSError as exc:
            await _json(send, 404, {"error": f"cannot read {target}: {exc.strerror}"})
            return
        await respond(send, 200, data, "application/octet-stream")

    async def _fetch(self, url: str, send: Send) -> None:
        try:
            host, port, target = loopback_endpoint(url)
        except NotLoopback as exc:
            await _json(send, 400, {"error": str(exc)})
            return
        try:
            with trio.fail_after(self.fetch_timeout):
                async with HttpConnection(host, port, max_body=MAX_FILE) as connection:
                    response = await connection.request("GET", target, [("connection", "close")])
        except (OSError, trio.TooSlowError, h11.ProtocolError) as exc:
            await _json(send, 502, {"error": f"fetching {url} failed: {exc!r}"})
            return
        await _json(
            send, 200, {"url": url, "status": response.status, "body": _text(response.body)}
        )
