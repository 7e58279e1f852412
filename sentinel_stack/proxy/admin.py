"""The admin listener (loopback only): /health, /ready, /status (JSON), /metrics (Prometheus)."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sentinel_stack.asgi import Receive, Scope, Send, respond, serve_lifespan
from sentinel_stack.proxy.front import ProxyApp
from sentinel_stack.proxy.metrics import BREAKER_STATES


class AdminApp:
    def __init__(self, proxy: ProxyApp) -> None:
        self.proxy = proxy
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
            body = json.dumps(self.status(), indent=2).encode()
            await respond(send, 200, body, "application/json")
        elif path == "/metrics":
            self._refresh_gauges()
            await respond(
                send, 200, generate_latest(self.proxy.metrics.registry), CONTENT_TYPE_LATEST
            )
        else:
            await respond(
                send, 404, b"not found: try /health /ready /status /metrics\n", "text/plain"
            )

    def _refresh_gauges(self) -> None:
        import trio

        now = trio.current_time()
        for name, link in self.proxy.state.pipeline.links.items():
            state = str(link.breaker.state(now))
            self.proxy.metrics.agent_breaker.labels(name).set(BREAKER_STATES.get(state, 0))
        for group in self.proxy.state.groups.values():
            group.status()

    def status(self) -> dict[str, Any]:
        import trio

        state = self.proxy.state
        now = trio.current_time()
        settings = state.settings
        return {
            "ready": self.ready,
            "draining": self.draining,
            "uptime": round(time.time() - self.started, 3),
            "revision": settings.revision,
            "listen": list(settings.listen),
            "tls": list(settings.tls.listen) if settings.tls else [],
            "routes": [
                {
                    "id": r.id,
                    "upstream": r.upstream,
                    "agents": list(r.agents)
                    if r.agents is not None
                    else list(settings.default_agents),
                }
                for r in state.routes.routes
            ],
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
