"""What the proxy process runs with, read from the stack's config file.

The proxy is an ordinary program: it reads the same `sentinel-stack.toml` as the launcher
(path from --config or $SENTINEL_CONFIG) and takes its agents' socket paths from the
environment the launcher sets ($SENTINEL_AGENT_<NAME>_SOCKET), falling back to the run
directory layout. Reload (SIGHUP) builds a new `ProxySettings` and swaps it in whole.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sentinel_stack.config.loader import load_config, load_config_text
from sentinel_stack.config.schema import (
    ProxyConfig,
    ProxyLimits,
    StackConfig,
    TlsConfig,
    UpstreamConfig,
)
from sentinel_stack.proxy.agentlink import AgentSettings
from sentinel_stack.proxy.breaker import BreakerPolicy
from sentinel_stack.proxy.routing import RouteTable


@dataclass(frozen=True)
class ProxySettings:
    listen: tuple[str, ...]
    admin: str
    tls: TlsConfig | None
    workers: int
    limits: ProxyLimits
    routes: RouteTable
    default_agents: tuple[str, ...]
    agents: Mapping[str, AgentSettings]
    upstreams: Mapping[str, UpstreamConfig]
    trusted_proxies: tuple[str, ...]
    retry_on_status: tuple[int, ...]
    upstream_breaker: BreakerPolicy
    events_socket: str | None
    revision: str
    text: str = field(default="", repr=False, compare=False)  # the config it came from


def agent_socket(name: str, environ: Mapping[str, str], run_dir: Path | None) -> Path:
    key = f"SENTINEL_AGENT_{name.upper().replace('-', '_')}_SOCKET"
    if key in environ:
        return Path(environ[key])
    if run_dir is None:
        raise ValueError(f"no socket known for agent `{name}`: set {key}")
    return run_dir / "agents" / f"{name}.sock"


def from_config(
    config: StackConfig, environ: Mapping[str, str], revision: str = ""
) -> ProxySettings:
    proxy = config.proxy or ProxyConfig()
    run_dir = Path(environ["SENTINEL_RUN_DIR"]) if "SENTINEL_RUN_DIR" in environ else None
    agents = {
        name: AgentSettings(
            name=name,
            socket=agent_socket(name, environ, run_dir),
            timeout=agent.timeout,
            failure_mode=agent.failure_mode,
            max_concurrency=agent.max_concurrency,
            breaker=BreakerPolicy(
                failure_threshold=agent.breaker.failures,
                recovery_timeout=agent.breaker.recovery,
                half_open_max_calls=agent.breaker.half_open_probes,
            ),
            config=agent.config,
            config_revision=int(
                hashlib.sha256(repr(sorted(agent.config.items())).encode()).hexdigest()[:8], 16
            ),
        )
        for name, agent in config.agents.items()
        if agent.enabled
    }
    return ProxySettings(
        listen=tuple(proxy.listen),
        admin=proxy.admin,
        tls=proxy.tls,
        workers=proxy.workers,
        limits=proxy.limits,
        routes=RouteTable.from_config(config.routes),
        default_agents=tuple(proxy.agents),
        agents=agents,
        upstreams=dict(config.upstreams),
        trusted_proxies=tuple(proxy.trusted_proxies),
        retry_on_status=tuple(proxy.retry_on_status),
        upstream_breaker=BreakerPolicy(
            failure_threshold=proxy.upstream_breaker.failures,
            recovery_timeout=proxy.upstream_breaker.recovery,
            half_open_max_calls=proxy.upstream_breaker.half_open_probes,
        ),
        events_socket=environ.get("SENTINEL_EVENTS_SOCKET"),
        revision=revision,
    )


def load_settings(
    path: Path, environ: Mapping[str, str] | None = None, text: str | None = None
) -> ProxySettings:
    """Raises `ConfigError` (with file, line and key path) when the config is bad.

    With ``text``, that is the config's content (workers get the text their parent
    validated, so a file broken since then cannot stop a restarted worker); ``path``
    still names it and anchors relative paths."""
    env = os.environ if environ is None else environ
    if text is None:
        loaded = load_config(path, env)
    else:
        loaded = load_config_text(text, str(path), env, path=path, base_dir=path.parent.resolve())
    revision = hashlib.sha256(loaded.text.encode()).hexdigest()[:12]
    return replace(from_config(loaded.config, env, revision), text=loaded.text)
