"""Compile a validated config into a `StackPlan`, checking what the schema alone cannot.

Checks here: unknown or cyclic dependencies, one name used twice, two children claiming
one port or socket, built-in components missing from this installation, socket paths
too long for the kernel.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from sentinel_stack.config.loader import ConfigError, ConfigIssue, LoadedConfig
from sentinel_stack.config.locate import KeyPath
from sentinel_stack.config.schema import Component, Readiness, Supervised
from sentinel_stack.supervisor.lifecycle import RestartPolicy
from sentinel_stack.supervisor.spec import ChildKind, ChildSpec, ReadinessCheck, StackPlan

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL

BUILTIN_MODULES: dict[str, str] = {
    "proxy": "sentinel_stack.proxy",
    "probe": "sentinel_stack.probe",
    "detector": "sentinel_stack.detect",
}


def default_run_dir(name: str, base: Path, environ: Mapping[str, str]) -> Path:
    """`$XDG_RUNTIME_DIR/sentinel-stack/NAME`; as root `/run/sentinel-stack/NAME`;
    else `.sentinel-stack/run/NAME` beside the config."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "sentinel-stack" / name
    if os.geteuid() == 0:
        return Path("/run/sentinel-stack") / name
    return base / ".sentinel-stack" / "run" / name


def build_plan(
    loaded: LoadedConfig,
    environ: Mapping[str, str] | None = None,
    run_dir: Path | None = None,
) -> StackPlan:
    env = os.environ if environ is None else environ
    config = loaded.config
    base = loaded.base_dir
    if run_dir is None:
        if config.stack.run_dir:
            run_dir = _resolve(base, config.stack.run_dir)
        else:
            run_dir = default_run_dir(config.stack.name, base, env)
    issues: list[ConfigIssue] = []
    children: dict[str, ChildSpec] = {}
    paths: dict[str, KeyPath] = {}

    def add(spec: ChildSpec, path: KeyPath) -> None:
        if spec.name in children:
            issues.append(
                loaded.issue(
                    f"the name `{spec.name}` is used twice (also at {_dotted(paths[spec.name])})",
                    path,
                    "give every process, agent and component its own name",
                )
            )
            return
        children[spec.name] = spec
        paths[spec.name] = path

    agent_sockets = {
        name: _resolve(run_dir, agent.socket)
        if agent.socket
        else run_dir / "agents" / f"{name}.sock"
        for name, agent in config.agents.items()
        if agent.enabled
    }
    common = {
        "SENTINEL_STACK_NAME": config.stack.name,
        "SENTINEL_RUN_DIR": str(run_dir),
        "SENTINEL_EVENTS_SOCKET": str(run_dir / "events.sock"),
        "PYTHONUNBUFFERED": "1",
    }
    for name, sock in agent_sockets.items():
        common[f"SENTINEL_AGENT_{name.upper().replace('-', '_')}_SOCKET"] = str(sock)

    for name, process in config.processes.items():
        if process.enabled:
            add(
                _spec(
                    name,
                    "process",
                    process,
                    process.command,
                    common,
                    config.stack.shutdown_timeout,
                    base,
                    run_dir,
                ),
                ("processes", name),
            )
    for name, agent in config.agents.items():
        if not agent.enabled:
            continue
        spec = _spec(
            name,
            "agent",
            agent,
            agent.command,
            common,
            config.stack.shutdown_timeout,
            base,
            run_dir,
        )
        add(
            _replace(
                spec,
                socket=agent_sockets[name],
                socket_activation=agent.socket_activation,
                env={**spec.env, "SENTINEL_AGENT_SOCKET": str(agent_sockets[name])},
            ),
            ("agents", name),
        )

    builtins: list[tuple[str, Component | None, tuple[str, ...], list[str]]] = []
    if config.proxy is not None:
        proxy_agents = set(config.proxy.agents)
        for route in config.routes:
            proxy_agents.update(route.agents or ())
        upstream_processes = [u.process for u in config.upstreams.values() if u.process]
        builtins.append(("proxy", config.proxy, (*sorted(proxy_agents), *upstream_processes), []))
    if config.probe is not None:
        flags = ["run", "--scope", config.probe.scope, "--backend", config.probe.backend]
        for sensitive in config.probe.sensitive_paths:
            flags += ["--sensitive-path", sensitive]
        for watched in config.probe.watch_paths:
            flags += ["--watch-path", watched]
        builtins.append(("probe", config.probe, (), flags))
    if config.detector is not None:
        builtins.append(
            (
                "detector",
                config.detector,
                (),
                ["--rules-dir", str(_resolve(base, config.detector.rules_dir))],
            )
        )
    for name, component, implicit, flags in builtins:
        if component is None or not component.enabled:
            continue
        command = component.command
        if command is None:
            module = BUILTIN_MODULES[name]
            if importlib.util.find_spec(module) is None:
                issues.append(
                    loaded.issue(
                        f"the {name} component is not part of this installation ({module})",
                        (name,),
                        f"remove the [{name}] table or set `enabled = false`",
                    )
                )
                continue
            command = [sys.executable, "-m", module, *flags]
        kind: ChildKind = name  # type: ignore[assignment]
        spec = _spec(
            name, kind, component, command, common, config.stack.shutdown_timeout, base, run_dir
        )
        if name == "proxy" and config.proxy is not None:
            listen = [*config.proxy.listen, config.proxy.admin]
            if config.proxy.tls is not None:
                listen += config.proxy.tls.listen
            spec = _replace(spec, ports=(*spec.ports, *(int(_port(a)) for a in listen)))
        add(_replace(spec, depends_on=tuple(dict.fromkeys((*spec.depends_on, *implicit)))), (name,))

    issues += _check_references(loaded, children, paths)
    issues += _check_claims(loaded, children, paths, config.proxy)
    order, cycle = _topological(children)
    if cycle:
        issues.append(
            loaded.issue(
                "dependency cycle: " + " -> ".join(cycle),
                (*paths[cycle[0]], "depends_on"),
                "remove one of these depends_on entries",
            )
        )
    if issues:
        raise ConfigError(issues)
    return StackPlan(
        name=config.stack.name,
        run_dir=run_dir,
        children=tuple(children[n] for n in order),
        config_path=loaded.path.resolve() if loaded.path else None,
        shutdown_timeout=config.stack.shutdown_timeout,
        log_max_bytes=config.stack.log_max_bytes,
        log_backups=config.stack.log_backups,
        log_ring_lines=config.stack.log_ring_lines,
        use_cgroup=config.stack.cgroup,
    )


def _spec(
    name: str,
    kind: ChildKind,
    item: Supervised,
    command: list[str],
    common: Mapping[str, str],
    shutdown_timeout: float,
    base: Path,
    run_dir: Path,
) -> ChildSpec:
    return ChildSpec(
        name=name,
        kind=kind,
        argv=(*command, *item.args),
        env={**common, "SENTINEL_CHILD_NAME": name, **item.env},
        cwd=str(_resolve(base, item.cwd)) if item.cwd else None,
        depends_on=tuple(item.depends_on),
        restart=RestartPolicy(
            mode=item.restart_policy,
            initial=item.backoff.initial,
            maximum=item.backoff.max,
            multiplier=item.backoff.multiplier,
            jitter=item.backoff.jitter,
            stable_after=item.stable_after,
            max_restarts=item.max_restarts,
            window=item.restart_window,
        ),
        readiness=_readiness(item.readiness, run_dir),
        stop_signal=item.stop_signal,
        stop_timeout=item.stop_timeout if item.stop_timeout is not None else shutdown_timeout,
        watchdog=item.watchdog,
        critical=item.critical,
        ports=tuple(item.ports),
    )


def _readiness(readiness: Readiness, run_dir: Path) -> ReadinessCheck:
    kind = readiness.kind
    target: str | tuple[str, ...] = ""
    if kind == "exec" and readiness.exec:
        target = tuple(readiness.exec)
    elif kind == "unix" and readiness.unix:
        target = str(_resolve(run_dir, readiness.unix))
    elif kind in ("tcp", "http"):
        target = getattr(readiness, kind)
    return ReadinessCheck(kind, target, readiness.timeout, readiness.interval)  # type: ignore[arg-type]


def _check_references(
    loaded: LoadedConfig, children: dict[str, ChildSpec], paths: dict[str, KeyPath]
) -> list[ConfigIssue]:
    issues = []
    config = loaded.config
    for name, spec in children.items():
        for dep in spec.depends_on:
            if dep not in children:
                issues.append(
                    loaded.issue(
                        f"`{name}` depends on `{dep}`, which is not defined (or is disabled)",
                        (*paths[name], "depends_on"),
                        _known(children),
                    )
                )
    known_agents = {n for n, s in children.items() if s.kind == "agent"}
    for index, route in enumerate(config.routes):
        if route.upstream not in config.upstreams:
            issues.append(
                loaded.issue(
                    f"route `{route.id}` sends to upstream `{route.upstream}`, "
                    "which is not defined",
                    ("routes", index, "upstream"),
                    "define it under [upstreams.NAME]",
                )
            )
        for agent in route.agents or ():
            if agent not in known_agents:
                issues.append(
                    loaded.issue(
                        f"route `{route.id}` uses unknown agent `{agent}`",
                        ("routes", index, "agents"),
                        _known(known_agents),
                    )
                )
    if config.proxy is not None:
        for agent in config.proxy.agents:
            if agent not in known_agents:
                issues.append(
                    loaded.issue(
                        f"the proxy uses unknown agent `{agent}`",
                        ("proxy", "agents"),
                        _known(known_agents),
                    )
                )
    for name, upstream in config.upstreams.items():
        if upstream.process and upstream.process not in children:
            issues.append(
                loaded.issue(
                    f"upstream `{name}` names process `{upstream.process}`, which is not defined",
                    ("upstreams", name, "process"),
                    _known(children),
                )
            )
    return issues


def _check_claims(
    loaded: LoadedConfig,
    children: dict[str, ChildSpec],
    paths: dict[str, KeyPath],
    proxy: object,
) -> list[ConfigIssue]:
    """Two children must never claim the same TCP port or Unix socket."""
    issues = []
    claims: dict[str, tuple[str, KeyPath]] = {}

    def claim(resource: str, owner: str, path: KeyPath) -> None:
        if resource in claims and claims[resource][0] != owner:
            other, other_path = claims[resource]
            issues.append(
                loaded.issue(
                    f"{resource} is claimed by both `{other}` ({_dotted(other_path)}) "
                    f"and `{owner}`",
                    path,
                    "give each its own port or socket",
                )
            )
        else:
            claims.setdefault(resource, (owner, path))

    for name, spec in children.items():
        for port in spec.ports:
            claim(f"TCP port {port}", name, (*paths[name], "ports"))
        if spec.socket is not None:
            claim(f"socket {spec.socket}", name, paths[name])
            if len(str(spec.socket)) > MAX_SOCKET_PATH:
                issues.append(
                    loaded.issue(
                        f"socket path {spec.socket} is longer than {MAX_SOCKET_PATH} bytes",
                        paths[name],
                        "set [stack] run_dir to a shorter directory",
                    )
                )
    if loaded.config.proxy is not None and "proxy" in children:
        for index, address in enumerate(loaded.config.proxy.listen):
            claim(f"TCP port {_port(address)}", "proxy", ("proxy", "listen", index))
        claim(f"TCP port {_port(loaded.config.proxy.admin)}", "proxy", ("proxy", "admin"))
    return issues


def _topological(children: dict[str, ChildSpec]) -> tuple[list[str], list[str]]:
    """Kahn's order, stable in definition order; on a cycle, the cycle's names."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        if state.get(name) == 2 or name not in children:
            return []
        if state.get(name) == 1:
            return [*stack[stack.index(name) :], name]
        state[name] = 1
        stack.append(name)
        for dep in children[name].depends_on:
            cycle = visit(dep)
            if cycle:
                return cycle
        stack.pop()
        state[name] = 2
        order.append(name)
        return []

    for name in children:
        cycle = visit(name)
        if cycle:
            return order, cycle
    return order, []


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _replace(spec: ChildSpec, **changes: object) -> ChildSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def _known(names: object) -> str:
    listed = ", ".join(sorted(names)) if names else "none"  # type: ignore[call-overload]
    return f"defined: {listed}"
