"""The proxy process with ``workers = N > 1``: supervises the workers, serves the admin listener.

It binds the listeners (``shared`` mode, see `workers`), starts the workers, says READY=1
once every one of them is ready, serves /health, /ready, /status and /metrics once for all
(merged by `aggregate` from the workers' snapshots), drains them all on SIGTERM/SIGINT and
passes a validated config to them all on SIGHUP. It serves no proxied request itself.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from sentinel_stack.child.sdnotify import notify
from sentinel_stack.config.loader import ConfigError
from sentinel_stack.proxy.admin import AdminApp, route_status
from sentinel_stack.proxy.aggregate import merge_families, merge_status, render, total
from sentinel_stack.proxy.server import bind_socket, require_loopback
from sentinel_stack.proxy.settings import ProxySettings, load_settings
from sentinel_stack.proxy.workers import SOCKET_MODES, Listeners, WorkerSlot, WorkerSupervisor
from sentinel_stack.proxy.workerwire import Family, Sample

SOCKETS_ENV = "SENTINEL_PROXY_WORKER_SOCKETS"


def socket_mode(environ: Mapping[str, str]) -> str:
    mode = environ.get(SOCKETS_ENV, "shared") or "shared"
    if mode not in SOCKET_MODES:
        raise ValueError(f"{SOCKETS_ENV}={mode!r}: expected one of {', '.join(SOCKET_MODES)}")
    return mode


def bind_listeners(settings: ProxySettings, mode: str) -> Listeners:
    """Shared mode: the sockets every worker inherits. Reuseport: none, workers bind."""
    if mode != "shared":
        return Listeners()
    secure = [bind_socket(a, reuse_port=False) for a in settings.tls.listen] if settings.tls else []
    return Listeners([bind_socket(a, reuse_port=False) for a in settings.listen], secure)


class WorkersView:
    """/status and /metrics over all workers, scraped when asked."""

    def __init__(self, parent: ProxyParent) -> None:
        self.parent = parent

    async def status(self) -> dict[str, Any]:
        slots = await self.parent.supervisor.scrape()
        settings = self.parent.settings
        statuses = [s.snapshot.status for s in slots if s.snapshot is not None]
        return {
            "revision": settings.revision,
            "listen": list(settings.listen),
            "tls": list(settings.tls.listen) if settings.tls else [],
            "worker_sockets": self.parent.mode,
            "workers": [worker_status(slot) for slot in slots],
            "routes": route_status(settings),
            **merge_status(statuses),
        }

    async def metrics(self) -> bytes:
        supervisor = self.parent.supervisor
        slots = await supervisor.scrape()
        snapshots = [s.snapshot.families for s in slots if s.snapshot is not None]
        return render(merge_families([*snapshots, supervisor.retired, self._own(slots)]))

    @staticmethod
    def _own(slots: list[WorkerSlot]) -> list[Family]:
        ready = sum(1 for s in slots if s.current is not None and s.current.ready)
        restarts = [
            Sample("sentinel_proxy_worker_restarts_total", {"worker": str(s.number)}, s.restarts)
            for s in slots
        ]
        return [
            Family(
                "sentinel_proxy_workers",
                "gauge",
                "Worker processes ready",
                [Sample("sentinel_proxy_workers", {}, ready)],
            ),
            Family("sentinel_proxy_worker_restarts", "counter", "Worker restarts", restarts),
        ]


def worker_status(slot: WorkerSlot) -> dict[str, Any]:
    run = slot.current
    return {
        "worker": slot.number,
        "pid": run.process.pid if run is not None else None,
        "ready": bool(run and run.ready),
        "uptime": round(time.time() - run.started, 3) if run is not None else 0.0,
        "restarts": slot.restarts,
        "last_exit": slot.last_exit,
        "revision": slot.revision,
        "requests": int(total(slot.snapshot.families, "sentinel_proxy_requests_total"))
        if slot.snapshot is not None
        else 0,
    }


class ProxyParent:
    def __init__(self, config_path: Path, settings: ProxySettings, log_level: str) -> None:
        require_loopback(settings.admin)
        self.config_path = config_path
        self.settings = settings
        self.mode = socket_mode(os.environ)
        self.log_level = log_level
        self.admin = AdminApp(WorkersView(self))

    async def run(self) -> None:
        listeners = bind_listeners(self.settings, self.mode)
        self.supervisor = WorkerSupervisor(
            self.config_path, self.settings.text, listeners, log_level=self.log_level
        )
        admin_sock = bind_socket(self.settings.admin, reuse_port=False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._signals)
            await nursery.start(self._supervise, nursery)
            await nursery.start(self._serve_admin, Sockets([], [admin_sock], []))
            if self.supervisor.draining:
                return  # told to stop while the workers were starting
            self.admin.ready = True
            count, listening = self.settings.workers, ", ".join(self.settings.listen)
            print(
                f"proxy listening on {listening} with {count} workers "
                f"({self.mode} sockets); admin on http://{self.settings.admin}",
                flush=True,
            )
            notify("READY=1", f"STATUS=serving on {listening}, {count} workers")

    async def _supervise(
        self, nursery: trio.Nursery, *, task_status: trio.TaskStatus[None]
    ) -> None:
        await self.supervisor.run(self.settings.workers, task_status=task_status)
        nursery.cancel_scope.cancel()  # every worker is gone: so are we (admin, signals)

    async def _serve_admin(self, sockets: Sockets, *, task_status: trio.TaskStatus[Any]) -> None:
        config = Config()
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        await worker_serve(
            wrap_app(self.admin, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
            config,
            sockets=sockets,
            shutdown_trigger=trio.sleep_forever,  # it ends with the workers: cancelled
            task_status=task_status,
        )

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                    continue
                notify("STOPPING=1", "STATUS=draining")
                self.admin.draining = True
                self.supervisor.drain()

    def reload(self) -> None:
        try:
            settings = load_settings(self.config_path)
        except (ConfigError, ValueError) as error:
            print(
                f"reload refused, keeping the running config:\n{error}", file=sys.stderr, flush=True
            )
            return
        self.settings = settings
        self.supervisor.reload(settings.text, settings.workers)
        print(f"reloaded (revision {settings.revision}, {settings.workers} workers)", flush=True)
        notify(f"STATUS=serving, revision {settings.revision}")
