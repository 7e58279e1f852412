"""What Compose and Kubernetes share: one network namespace per stack, like one machine.

In both tiers the children that `up` would run on one machine share a network namespace
(Compose: ``network_mode: service:…``; Kubernetes: one pod), so the config's loopback
addresses (upstream targets, the admin listener) mean what they mean under `up`. Two
things must change for a container: the proxy's client listeners move from loopback to
all addresses inside the namespace (the published port or Service is the boundary now),
and the probe watches the host, since a container has no launcher cgroup to scope it to.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sentinel_stack.export.deployment import Deployment, ExportedChild

__all__ = [
    "Listener",
    "container_argv",
    "container_config_text",
    "listeners",
    "stop_grace",
]

RESOURCES = {  # requests, limits: a starting point; override with a patch (docs/deploy.md)
    "proxy": ({"cpu": "100m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"}),
    "agent": ({"cpu": "50m", "memory": "64Mi"}, {"cpu": "500m", "memory": "256Mi"}),
    "process": ({"cpu": "50m", "memory": "64Mi"}, {"cpu": "500m", "memory": "256Mi"}),
    "probe": ({"cpu": "100m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"}),
    # Rules, chains and baselines in memory; a bounded hub queue (10k lines) in front.
    "detector": ({"cpu": "100m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"}),
}


@dataclass(frozen=True)
class Listener:
    """A proxy listener: where the config binds it, and where it binds in a container."""

    configured: str
    host: str  # as configured, for publishing on the Docker host
    port: int

    @property
    def in_container(self) -> str:
        host = self.host.strip("[]")
        if host == "localhost" or _is_loopback(host):
            return f"[::]:{self.port}" if ":" in host else f"0.0.0.0:{self.port}"
        return self.configured


def listeners(deployment: Deployment) -> list[Listener]:
    proxy = deployment.config.proxy
    if proxy is None or deployment.proxy is None:
        return []
    addresses = [*proxy.listen, *(proxy.tls.listen if proxy.tls else [])]
    found = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        found.append(Listener(address, host, int(port)))
    return found


def container_config_text(deployment: Deployment) -> str:
    """The config as the containers read it: client listeners on loopback move to all
    addresses (and secrets are left out, as for every target)."""
    moved = {item.configured: item.in_container for item in listeners(deployment)}
    config = deployment.config.proxy

    def move_listeners(raw: dict[str, Any]) -> bool:
        if config is None or all(old == new for old, new in moved.items()):
            return False
        raw["proxy"]["listen"] = [moved[a] for a in config.listen]
        if config.tls is not None:
            raw["proxy"].setdefault("tls", {})["listen"] = [moved[a] for a in config.tls.listen]
        return True

    return deployment.config_file_text(move_listeners)


def container_argv(child: ExportedChild) -> list[str]:
    argv = list(child.spec.argv)
    if child.kind == "probe" and "--scope" in argv:
        argv[argv.index("--scope") + 1] = "host"
    return argv


def stop_grace(child: ExportedChild) -> int:
    """Seconds a container gets to stop: the child's own stop timeout, plus a margin."""
    return int(child.spec.stop_timeout) + 5


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
