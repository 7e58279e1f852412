"""What the supervisor runs: a plan of child specs, compiled from the config."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sentinel_stack.supervisor.lifecycle import RestartPolicy

ChildKind = Literal["process", "agent", "proxy", "probe", "detector"]
ReadinessKind = Literal["none", "notify", "tcp", "unix", "http", "exec"]


@dataclass(frozen=True)
class ReadinessCheck:
    kind: ReadinessKind = "none"
    target: str | tuple[str, ...] = ""
    timeout: float = 10.0
    interval: float = 0.02


@dataclass(frozen=True)
class ChildSpec:
    """Everything needed to run one child; equal specs mean "nothing to restart" on reload."""

    name: str
    kind: ChildKind
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    depends_on: tuple[str, ...] = ()
    restart: RestartPolicy = RestartPolicy()
    readiness: ReadinessCheck = ReadinessCheck()
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    watchdog: float | None = None
    critical: bool = False
    socket: Path | None = None
    socket_activation: bool = False
    ports: tuple[int, ...] = ()

    def __hash__(self) -> int:
        return hash((self.name, self.argv))


@dataclass(frozen=True)
class StackPlan:
    """The children in a valid start order (dependencies first), plus run-wide settings."""

    name: str
    run_dir: Path
    children: tuple[ChildSpec, ...]
    config_path: Path | None = None
    shutdown_timeout: float = 10.0
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 3
    log_ring_lines: int = 2000
    use_cgroup: bool = True

    def child(self, name: str) -> ChildSpec:
        for spec in self.children:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.children)

    def subset(self, names: set[str], *, with_dependencies: bool) -> StackPlan:
        """Only ``names`` (and what they depend on, when asked); other edges are dropped."""
        chosen = set(names)
        if with_dependencies:
            for spec in reversed(self.children):  # dependents come after their dependencies
                if spec.name in chosen:
                    chosen.update(spec.depends_on)
        children = tuple(
            dataclasses.replace(spec, depends_on=tuple(d for d in spec.depends_on if d in chosen))
            for spec in self.children
            if spec.name in chosen
        )
        return dataclasses.replace(self, children=children)

    def levels(self) -> list[list[str]]:
        """Children grouped by depth: each group can start once the previous ones are ready."""
        depth: dict[str, int] = {}
        for spec in self.children:
            depth[spec.name] = 1 + max((depth[d] for d in spec.depends_on), default=-1)
        groups: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name, level in depth.items():
            groups[level].append(name)
        return groups
