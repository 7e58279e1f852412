"""The admin listener (loopback only): /health, /ready, /status (JSON), /metrics (Prometheus).

What /status and /metrics show comes from an `AdminView`: `LocalView` is this process's own
state (one proxy process, and each worker, which sends it to its parent); with workers the
parent serves a view merged over all of them (`workers.WorkerSupervisor`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sentinel_stack.asgi import Receive, Scope, Send, respond, serve_lifespan
from sentinel_stack.proxy.aggregate import families_of
from sentinel_stack.proxy.front import ProxyApp
from sentinel_stack.proxy.metrics import BREAKER_STATES
from sentinel_stack.proxy.settings import ProxySettings
from sentinel_stack.proxy.workerwire import Family


class AdminView(Protocol):
    async def status(self) -> dict[str, Any]:
        """/status without ready, draining and uptime (the admin app adds them)."""
        ...

    async def metrics(self) -> bytes:
        """/metrics as Prometheus text."""
        ...


class LocalView:
    """The state of the proxy running in this process."""

    def __init__(self, proxy: ProxyApp) -> None:
        self.proxy = proxy

    async def status(self) -> dict[str, Any]:
        return self.snapshot_status()

    async def metrics(self) -> bytes:
        self.refresh_gauges()
        return generate_latest(self.proxy.metrics.registry)

    def families(self) -> list[Family]:
        self.refresh_gauges()
        return families_of(self.proxy.metrics.registry)

    def refresh_gauges(self) -> None:
        now = trio.current_time()
        for name, link in self.proxy.state.pipeline.links.items():
            state = str(link.breaker.state(now))
            self.proxy.metrics.agent_breaker.labels(name).set(BREAKER_STATES.get(state, 0))
        for group in self.proxy.state.groups.values():
            group.status()

    def snapshot_status(self) -> dict[str, Any]:
        state = self.proxy.state
        now = trio.current_time()
        settings = state.settings
        return {
            "revision": settings.revision,
            "listen": list(settings.listen),
            "tls": list(settings.tls.listen) if settings.tls else [],
            "routes": route_status(settings),
            "upstreams": {name: group.status() for name, group in state.groups.items()},
            "agents": {
                name: {
                    "connected": link.connected,
                    "breaker": str(link.breaker.state(now)),
                    "connects": link.connects,
                    "last_error": link.last_error,
                    "timeout_ms": link.settings.timeout * 1000,
                    "failure_mode": link.settings.failure_mode,
                }
                for name, link in state.pipeline.links.items()
            },
            "access_log": {"sent": self.proxy.access.sent, "dropped": self.proxy.access.dropped},
        }


def route_status(settings: ProxySettings) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "upstream": r.upstream,
            "agents": list(r.agents) if r.agents is not None else list(settings.default_agents),
        }
        for r in settings.routes.routes
    ]


class AdminApp:
    def __init__(self, view: AdminView) -> None:
        self.view = view
        self.ready = False
        self.draining = False
        self.started = time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await respond(send, 200, b"ok\n", "text/plain")
        elif path == "/ready":
            ok = self.ready and not self.draining
            await respond(
                send, 200 if ok else 503, b"ready\n" if ok else b"not ready\n", "text/plain"
            )
        elif path == "/status":
            body = json.dumps(await self.status(), indent=2).encode()
            await respond(send, 200, body, "application/json")
        elif path == "/metrics":
            await respond(send, 200, await self.view.metrics(), CONTENT_TYPE_LATEST)
        else:
            await respond(
                send, 404, b"not found: try /health /ready /status /metrics\n", "text/plain"
            )

    async def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "draining": self.draining,
            "uptime": round(time.time() - self.started, 3),
            **await self.view.status(),
        }
