"""The proxy process: hypercorn (trio worker) listeners, the admin listener, reload, drain.

Listeners are bound here (with SO_REUSEPORT, so more worker processes can share a port)
and handed to hypercorn. READY=1 goes out once every listener is bound; SIGTERM drains
(hypercorn stops accepting and finishes in-flight requests); SIGHUP reloads routes,
upstreams and agents by swapping the request state — open connections are not touched.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from sentinel_stack.child.sdnotify import notify
from sentinel_stack.config.loader import ConfigError
from sentinel_stack.proxy.admin import AdminApp
from sentinel_stack.proxy.agentlink import AgentLink
from sentinel_stack.proxy.front import ProxyApp, ProxyState
from sentinel_stack.proxy.limits import ForwardingPolicy, RequestLimits
from sentinel_stack.proxy.metrics import ProxyMetrics
from sentinel_stack.proxy.pipeline import Pipeline
from sentinel_stack.proxy.settings import ProxySettings, load_settings
from sentinel_stack.proxy.telemetry import AccessLog, source_name
from sentinel_stack.proxy.upstream_pool import PoolLimits, UpstreamPool, open_upstream_pool
from sentinel_stack.proxy.upstreams import build_groups

log = logging.getLogger("sentinel.proxy")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind_socket(address: str, *, reuse_port: bool = True) -> socket.socket:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def require_loopback(address: str) -> None:
    host, _ = split_address(address)
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the admin listener must be on loopback, not {address}")


def build_state(
    settings: ProxySettings,
    pool: UpstreamPool,
    metrics: ProxyMetrics,
    links: Mapping[str, AgentLink],
) -> ProxyState:
    limits = settings.limits
    return ProxyState(
        settings=settings,
        routes=settings.routes,
        groups=build_groups(
            settings.upstreams, pool, metrics, settings.upstream_breaker, settings.retry_on_status
        ),
        pipeline=Pipeline(links),
        forwarding=ForwardingPolicy.from_cidrs(settings.trusted_proxies),
        limits=RequestLimits(
            max_target_length=limits.max_uri_bytes,
            max_header_count=limits.max_headers,
            max_header_size=limits.max_header_bytes,
            max_header_bytes=limits.max_header_bytes,
        ),
    )


def hypercorn_config(settings: ProxySettings) -> Config:
    config = Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = settings.limits.keep_alive_timeout
    config.read_timeout = int(settings.limits.read_timeout) or 1
    config.h11_max_incomplete_size = settings.limits.max_header_bytes
    config.h2_max_header_list_size = settings.limits.max_header_bytes
    config.graceful_timeout = 10.0
    config.include_server_header = False
    if settings.tls is not None:
        config.certfile = settings.tls.cert
        config.keyfile = settings.tls.key
    return config


class ProxyServer:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.settings = load_settings(config_path)
        require_loopback(self.settings.admin)
        self.metrics = ProxyMetrics()
        self.access = AccessLog(self.settings.events_socket, source_name())
        self.links: dict[str, AgentLink] = {}
        self.shutdown = trio.Event()

    async def run(self) -> None:
        limits = PoolLimits(max_connections=512, max_idle=128)
        async with open_upstream_pool(limits) as pool, trio.open_nursery() as nursery:
            self.pool = pool
            self.nursery = nursery
            self._sync_links(self.settings)
            state = build_state(self.settings, pool, self.metrics, self.links)
            self.app = ProxyApp(state, self.metrics, self.access)
            self.admin = AdminApp(self.app)
            self._health_scope = trio.CancelScope()
            nursery.start_soon(self._health_checks, state)
            nursery.start_soon(self.access.run)
            config = hypercorn_config(self.settings)
            secure = [bind_socket(a) for a in self.settings.tls.listen] if self.settings.tls else []
            plain = [bind_socket(a) for a in self.settings.listen]
            admin_config = Config()
            admin_config.accesslog = None
            admin_config.errorlog = logging.getLogger("hypercorn.error")
            admin_sock = bind_socket(self.settings.admin, reuse_port=False)
            # The servers' nursery ends when hypercorn has drained after `shutdown`.
            async with trio.open_nursery() as servers:
                binds = await servers.start(
                    self._serve, self.app, config, Sockets(secure, plain, [])
                )
                await servers.start(
                    self._serve, self.admin, admin_config, Sockets([], [admin_sock], [])
                )
                self.admin.ready = True
                listening = ", ".join(binds)
                print(
                    f"proxy listening on {listening}; admin on http://{self.settings.admin}",
                    flush=True,
                )
                notify("READY=1", f"STATUS=serving on {listening}")
                nursery.start_soon(self._signals)
            nursery.cancel_scope.cancel()

    async def _serve(
        self,
        app: object,
        config: Config,
        sockets: Sockets,
        *,
        task_status: trio.TaskStatus[list[str]],
    ) -> None:
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
            config,
            sockets=sockets,
            shutdown_trigger=self.shutdown.wait,
            task_status=task_status,
        )

    async def _health_checks(self, state: ProxyState) -> None:
        with self._health_scope:
            async with trio.open_nursery() as nursery:
                for group in state.groups.values():
                    nursery.start_soon(group.check_health)

    def _sync_links(self, settings: ProxySettings) -> None:
        """Keep links whose settings did not change (their connections stay up)."""
        for name in list(self.links):
            if name not in settings.agents or self.links[name].settings != settings.agents[name]:
                self.links.pop(name).cancel()
        for name, agent in settings.agents.items():
            if name not in self.links:
                link = self.links[name] = AgentLink(agent)
                self.nursery.start_soon(link.run)

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                    continue
                # hypercorn stops accepting, finishes in-flight requests (up to its
                # graceful_timeout), then its serve tasks return and `run` ends.
                notify("STOPPING=1", "STATUS=draining")
                self.admin.draining = True
                self.shutdown.set()
                return

    def reload(self) -> None:
        try:
            settings = load_settings(self.config_path)
        except (ConfigError, ValueError) as error:
            print(
                f"reload refused, keeping the running config:\n{error}", file=sys.stderr, flush=True
            )
            return
        self.settings = settings
        self._sync_links(settings)
        state = build_state(settings, self.pool, self.metrics, self.links)
        self._health_scope.cancel()
        self._health_scope = trio.CancelScope()
        self.nursery.start_soon(self._health_checks, state)
        self.app.state = state  # requests in flight finish with the state they started with
        print(f"reloaded (revision {settings.revision})", flush=True)
        notify(f"STATUS=serving, revision {settings.revision}")
