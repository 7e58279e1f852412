"""The proxy in one process: hypercorn (trio worker) listeners, admin listener, reload, drain.

Listeners are bound here (with SO_REUSEPORT) or inherited from the parent (``workers > 1``,
see `workers`) and handed to hypercorn. Alone, READY=1 goes out once every listener is
bound; as a worker, a `Ready` message to the parent instead. SIGTERM drains (hypercorn stops
accepting and finishes in-flight requests); SIGHUP reloads routes, upstreams and agents by
swapping the request state — open connections are not touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from sentinel_stack.child.sdnotify import notify
from sentinel_stack.config.loader import ConfigError
from sentinel_stack.proxy.admin import AdminApp, LocalView
from sentinel_stack.proxy.agentlink import AgentLink
from sentinel_stack.proxy.front import ProxyApp, ProxyState
from sentinel_stack.proxy.limits import ForwardingPolicy, RequestLimits
from sentinel_stack.proxy.metrics import ProxyMetrics
from sentinel_stack.proxy.pipeline import Pipeline
from sentinel_stack.proxy.settings import ProxySettings, load_settings
from sentinel_stack.proxy.telemetry import AccessLog, source_name
from sentinel_stack.proxy.upstream_pool import PoolLimits, UpstreamPool, open_upstream_pool
from sentinel_stack.proxy.upstreams import build_groups
from sentinel_stack.proxy.workerwire import (
    Drain,
    Ready,
    Reload,
    Reloaded,
    Scrape,
    Snapshot,
    ToWorker,
    WireChannel,
)

log = logging.getLogger("sentinel.proxy")
SNAPSHOT_INTERVAL = 1.0


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


@dataclass(frozen=True)
class WorkerRole:
    """How the parent started this process as one of its workers (see `workers`)."""

    number: int  # 1..N, in access records and the parent's /status
    channel_fd: int  # our end of the socketpair to the parent: messages and lifeline
    plain_fds: tuple[int, ...] = ()  # inherited listeners; none: bind our own (SO_REUSEPORT)
    secure_fds: tuple[int, ...] = ()
    config_text: str | None = None  # what the parent validated; None: read the file


def inherited_socket(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


class ProxyServer:
    """The proxy in this process: alone (with the admin listener and sd_notify), or as one
    worker of a parent that serves the admin listener and talks to us over `role`'s channel."""

    def __init__(self, config_path: Path, role: WorkerRole | None = None) -> None:
        self.config_path = config_path
        self.role = role
        self.settings = load_settings(config_path, text=role.config_text if role else None)
        require_loopback(self.settings.admin)
        self.metrics = ProxyMetrics()
        self.access = AccessLog(self.settings.events_socket, source_name())
        self.links: dict[str, AgentLink] = {}
        self.shutdown = trio.Event()
        self.admin: AdminApp | None = None

    def _listeners(self) -> tuple[list[socket.socket], list[socket.socket]]:
        role, tls = self.role, self.settings.tls
        if role is not None and (role.plain_fds or role.secure_fds):
            secure = [inherited_socket(fd) for fd in role.secure_fds]
            return secure, [inherited_socket(fd) for fd in role.plain_fds]
        secure = [bind_socket(a) for a in tls.listen] if tls else []
        return secure, [bind_socket(a) for a in self.settings.listen]

    async def run(self) -> None:
        limits = PoolLimits(max_connections=512, max_idle=128)
        async with open_upstream_pool(limits) as pool, trio.open_nursery() as nursery:
            self.pool = pool
            self.nursery = nursery
            self._sync_links(self.settings)
            state = build_state(self.settings, pool, self.metrics, self.links)
            worker = self.role.number if self.role else 0
            self.app = ProxyApp(state, self.metrics, self.access, worker=worker)
            self.view = LocalView(self.app)
            self._health_scope = trio.CancelScope()
            nursery.start_soon(self._health_checks, state)
            nursery.start_soon(self.access.run)
            config = hypercorn_config(self.settings)
            secure, plain = self._listeners()
            channel = self._open_channel(self.role) if self.role is not None else None
            # The servers' nursery ends when hypercorn has drained after `shutdown`.
            async with trio.open_nursery() as servers:
                binds = await servers.start(
                    self._serve, self.app, config, Sockets(secure, plain, [])
                )
                if self.role is None or channel is None:
                    await self._serve_admin(servers, binds)
                else:
                    nursery.start_soon(self._talk_to_parent, channel, self.role, binds)
                nursery.start_soon(self._signals)
            if channel is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await channel.send(self._snapshot(0))  # the final counts, to the parent
            nursery.cancel_scope.cancel()

    async def _serve_admin(self, servers: trio.Nursery, binds: list[str]) -> None:
        admin_config = Config()
        admin_config.accesslog = None
        admin_config.errorlog = logging.getLogger("hypercorn.error")
        admin_sock = bind_socket(self.settings.admin, reuse_port=False)
        self.admin = AdminApp(self.view)
        await servers.start(self._serve, self.admin, admin_config, Sockets([], [admin_sock], []))
        self.admin.ready = True
        listening = ", ".join(binds)
        print(f"proxy listening on {listening}; admin on http://{self.settings.admin}", flush=True)
        notify("READY=1", f"STATUS=serving on {listening}")

    @staticmethod
    def _open_channel(role: WorkerRole) -> WireChannel[ToWorker]:
        sock = socket.socket(fileno=role.channel_fd)
        sock.setblocking(False)
        return WireChannel(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), ToWorker)

    def _snapshot(self, seq: int) -> Snapshot:
        return Snapshot(seq, self.view.families(), self.view.snapshot_status())

    async def _talk_to_parent(
        self, channel: WireChannel[ToWorker], role: WorkerRole, binds: list[str]
    ) -> None:
        """Answer the parent until it is gone; its end-of-file means: drain now."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await channel.send(Ready(role.number, os.getpid(), binds))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._push_snapshots, channel)
                async for message in channel.messages():
                    if isinstance(message, Scrape):
                        await channel.send(self._snapshot(message.seq))
                    elif isinstance(message, Reload):
                        error = self.reload(message.text)
                        await channel.send(Reloaded(self.settings.revision, error or ""))
                    elif isinstance(message, Drain):
                        self.drain()
                nursery.cancel_scope.cancel()
        self.drain()

    async def _push_snapshots(self, channel: WireChannel[ToWorker]) -> None:
        """Unasked, so the parent's copy is recent when this worker dies without a word."""
        while True:
            await trio.sleep(SNAPSHOT_INTERVAL)
            await channel.send(self._snapshot(0))

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
                self.drain()
                return

    def drain(self) -> None:
        """hypercorn stops accepting, finishes in-flight requests (up to its
        graceful_timeout), then its serve tasks return and `run` ends."""
        if self.shutdown.is_set():
            return
        notify("STOPPING=1", "STATUS=draining")
        if self.admin is not None:
            self.admin.draining = True
        self.shutdown.set()

    def reload(self, text: str | None = None) -> str | None:
        """Swap in the config file's settings (or ``text``'s); the error when refused."""
        try:
            settings = load_settings(self.config_path, text=text)
        except (ConfigError, ValueError) as error:
            print(
                f"reload refused, keeping the running config:\n{error}", file=sys.stderr, flush=True
            )
            return str(error)
        self.settings = settings
        self._sync_links(settings)
        state = build_state(settings, self.pool, self.metrics, self.links)
        self._health_scope.cancel()
        self._health_scope = trio.CancelScope()
        self.nursery.start_soon(self._health_checks, state)
        self.app.state = state  # requests in flight finish with the state they started with
        if self.role is None:
            print(f"reloaded (revision {settings.revision})", flush=True)
            notify(f"STATUS=serving, revision {settings.revision}")
        return None
