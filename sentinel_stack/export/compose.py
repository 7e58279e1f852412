"""The stack as a Docker Compose project: one service per child, one network namespace.

A small ``netns`` service holds the stack's network namespace and publishes the proxy's
ports (on the host address the config names, so a loopback listener stays loopback on
the Docker host); every other child joins it (``network_mode: service:netns``), the way
they share one machine under `up`. Agents and the proxy share the ``sockets`` volume
mounted at ``<run-dir>/agents``. ``depends_on`` waits for ``service_healthy`` where the
dependency has a health check (`healthcheck` module: agent socket, proxy /ready, port).
The probe runs privileged in the host's pid namespace with /sys read-only.

The detector serves the event hub (no launcher here) at ``<run-dir>/events.sock`` in the
``run`` volume; the proxy, the agents and the probe (which mounts ``run`` too, having no
network) write to it. The proxy and agents start once the detector has started, the probe
once its health check sees the socket answer (detection never gates the data path).
"""

from __future__ import annotations

import re
from typing import Any

from sentinel_stack.export.containers import (
    container_argv,
    container_config_text,
    listeners,
    stop_grace,
)
from sentinel_stack.export.deployment import CONFIG_FILE, Deployment, ExportedChild, ExportError
from sentinel_stack.export.yamltext import dump_yaml

__all__ = ["NETNS_SERVICE", "export_compose"]

NETNS_SERVICE = "netns"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# PID 1 of the namespace holder: sleeps, and exits at once on SIGTERM (no default handler
# for PID 1, so it needs one or `docker compose down` waits out the grace period).
_HOLD = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()"
_HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
}


def export_compose(deployment: Deployment) -> dict[str, str]:
    """``compose.yaml``, ``config/`` (mounted read-only), ``env/*.env.example``."""
    if any(child.name == NETNS_SERVICE for child in deployment.children):
        raise ExportError(
            f"a child is named `{NETNS_SERVICE}`, the name of the Compose service that holds "
            "the stack's network namespace; rename that child for the Compose export"
        )
    services: dict[str, Any] = {NETNS_SERVICE: _netns(deployment)}
    for child in deployment.children:
        services[child.name] = _service(deployment, child)
    document: dict[str, Any] = {
        "name": deployment.base_name,
        "services": services,
        "volumes": {"run": {}, "sockets": {}},
    }
    files = {
        "compose.yaml": _header(deployment) + dump_yaml(_escape(document)),
        f"config/{CONFIG_FILE}": container_config_text(deployment),
    }
    for asset in deployment.assets:
        if not asset.path.startswith("/"):
            files[f"config/{asset.path}"] = asset.text
    for child in deployment.children:
        if child.supplied:
            files[f"env/{child.name}.env.example"] = deployment.env_example(
                child, f"env/{child.name}.env"
            )
    in_commands = sorted(
        {
            name
            for child in deployment.children
            for arg in child.spec.argv
            for name in _REFERENCE.findall(arg)
            if name in child.supplied
        }
    )
    if in_commands:
        files[".env.example"] = (
            "# Compose fills ${VAR} in the services' commands from the shell or from .env\n"
            "# beside compose.yaml, at `docker compose up`: copy this file to .env, fill it in.\n"
            + "".join(f"{name}=\n" for name in in_commands)
        )
    return files


def _netns(deployment: Deployment) -> dict[str, Any]:
    published = []
    for listener in listeners(deployment):
        host = listener.host.strip("[]")
        binding = f"{listener.port}:{listener.port}"
        published.append(f"{host}:{binding}" if host and host != "0.0.0.0" else binding)  # noqa: S104
    service: dict[str, Any] = {
        "image": deployment.options.image,
        "command": [deployment.python, "-c", _HOLD],
        "restart": "unless-stopped",
        **_HARDENED,
    }
    if published:
        service["ports"] = published
    return service


def _service(deployment: Deployment, child: ExportedChild) -> dict[str, Any]:
    spec = child.spec
    service: dict[str, Any] = {
        "image": deployment.options.image,
        "command": container_argv(child),
        "working_dir": spec.cwd or deployment.config_dir,
        "environment": dict(spec.env),
    }
    if child.supplied:
        service["env_file"] = [f"env/{child.name}.env"]
    volumes = [f"./config:{deployment.config_dir}:ro"]
    if child.kind == "probe":
        volumes.append("/sys:/sys:ro")
        if deployment.events_socket is not None:  # the detector's hub: a socket in `run`
            volumes.append(f"run:{deployment.run_dir}")
        service.update(privileged=True, pid="host", network_mode="none")
    else:
        volumes += [f"run:{deployment.run_dir}", f"sockets:{deployment.agents_dir}"]
        service["network_mode"] = f"service:{NETNS_SERVICE}"
        service.update(_HARDENED)
        service["tmpfs"] = ["/tmp"]
        if any(port < 1024 for port in spec.ports):
            service["cap_add"] = ["NET_BIND_SERVICE"]
    service["volumes"] = volumes
    depends: dict[str, Any] = {}
    if child.kind != "probe":
        depends[NETNS_SERVICE] = {"condition": "service_started"}
    for name in spec.depends_on:
        other = deployment.child(name)
        # Detection is never on the data path: a detector that fails (a broken rule file)
        # must not keep the proxy from starting. Its hub is up within a second; the
        # producers reconnect, dropping (and counting) what comes before. The probe,
        # feeding only the detector, waits for it.
        gate = other.kind != "detector" or child.kind == "probe"
        healthy = gate and deployment.health_check(other) is not None
        depends[name] = {"condition": "service_healthy" if healthy else "service_started"}
    if depends:
        service["depends_on"] = depends
    check = deployment.health_check(child)
    if check is not None:
        service["healthcheck"] = {
            "test": ["CMD", *deployment.healthcheck_argv(check)],
            "interval": "5s",
            "timeout": "3s",
            "retries": 3,
            "start_period": f"{spec.readiness.timeout:g}s",
        }
    service["restart"] = _restart(child)
    service["stop_signal"] = spec.stop_signal
    service["stop_grace_period"] = f"{stop_grace(child)}s"
    return service


def _restart(child: ExportedChild) -> str:
    policy = child.spec.restart
    if policy.mode == "never":
        return "no"
    if policy.mode == "always":
        return "always"
    return f"on-failure:{policy.max_restarts}" if policy.max_restarts else "on-failure"


def _escape(value: Any) -> Any:
    """Compose interpolates ``$`` in every string: write literal dollars as ``$$``. A
    ``${VAR}`` left by `prepare` is meant for Compose (the shell or ``.env`` at `up`)."""
    if isinstance(value, str):
        parts = value.split("${")
        head = parts[0].replace("$", "$$")
        rest = []
        for part in parts[1:]:
            name, brace, tail = part.partition("}")
            if brace and name.isidentifier():
                rest.append("${" + name + "}" + tail.replace("$", "$$"))
            else:
                rest.append("$${" + part.replace("$", "$$"))
        return head + "".join(rest)
    if isinstance(value, dict):
        return {key: _escape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape(item) for item in value]
    return value


def _header(deployment: Deployment) -> str:
    return (
        f"# Stack `{deployment.stack}` as a Compose project: `docker compose up -d` here.\n"
        "# Generated by `sentinel-stack export compose`: change the config and export again.\n"
        f"# Image: {deployment.options.image} must hold sentinel-stack in "
        f"{deployment.options.prefix} (docs/deploy.md).\n"
    )
