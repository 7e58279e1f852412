"""Run a real stack around the proxy for end-to-end tests: fake upstreams, real agents."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from sentinel_stack.config import load_config_text
from sentinel_stack.config.plan import build_plan
from sentinel_stack.supervisor.spec import StackPlan
from sentinel_stack.supervisor.stack import Supervisor
from tests.integration.stackkit import Changes, running

UPSTREAM = str(Path(__file__).resolve().parents[1] / "fakeupstream.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@dataclass
class ProxyKit:
    dir: Path
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    tables: list[str] = field(default_factory=list)
    routes: list[dict[str, object]] = field(default_factory=list)
    proxy_extra: dict[str, object] = field(default_factory=dict)
    upstream_ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def upstream_process(self, name: str) -> str:
        port = self.upstream_ports[name] = free_port()
        command = [sys.executable, UPSTREAM, "--port", str(port), "--name", name]
        self.tables.append(
            f"[processes.{name}]\n"
            f"command = {json.dumps(command)}\n"
            "readiness = { notify = true }\n"
            'backoff = { initial = "50ms" }\nmax_restarts = 100\n'
        )
        return f"127.0.0.1:{port}"

    def upstream(self, name: str, *targets: str, **fields: object) -> None:
        fields.setdefault(
            "health_check",
            {
                "kind": "tcp",
                "interval": "200ms",
                "timeout": "200ms",
                "healthy_threshold": 1,
                "unhealthy_threshold": 1,
            },
        )
        lines = [f"[upstreams.{name}]", f"targets = {json.dumps(list(targets))}"]
        lines += [f"{k} = {_toml(v)}" for k, v in fields.items()]
        self.tables.append("\n".join(lines))

    def agent(self, name: str, module: str, **fields: object) -> None:
        lines = [
            f"[agents.{name}]",
            f"command = {json.dumps([sys.executable, '-m', module])}",
            'backoff = { initial = "50ms" }',
            "max_restarts = 100",
        ]
        lines += [f"{k} = {_toml(v)}" for k, v in fields.items()]
        self.tables.append("\n".join(lines))

    def text(self) -> str:
        proxy = {
            "listen": [f"127.0.0.1:{self.port}"],
            "admin": f"127.0.0.1:{self.admin_port}",
            **self.proxy_extra,
        }
        parts = [
            '[stack]\nname = "proxytest"\nshutdown_timeout = "5s"',
            "[proxy]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in proxy.items()),
            *self.tables,
        ]
        for route in self.routes:
            parts.append("[[routes]]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in route.items()))
        return "\n\n".join(parts) + "\n"

    def write(self) -> Path:
        path = self.dir / "stack.toml"
        path.write_text(self.text())
        return path

    def plan_now(self) -> StackPlan:
        path = self.write()
        loaded = load_config_text(path.read_text(), str(path), path=path, base_dir=self.dir)
        return build_plan(loaded, run_dir=self.dir / "run")

    @asynccontextmanager
    async def run(self) -> AsyncIterator[tuple[Supervisor, Changes, httpx.AsyncClient]]:
        plan = self.plan_now()
        env = {"SENTINEL_CONFIG": str(self.dir / "stack.toml")}
        async with running(plan, extra_env=env) as (sup, changes):
            assert sup.runner("proxy").state == "running", sup.runner("proxy").log.tail(30)
            async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
                yield sup, changes, client


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    """A deadline-bounded wait on a condition that has no event to await (remote state)."""
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(interval)
