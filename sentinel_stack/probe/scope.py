"""Which processes the probe watches: the stack (its cgroup subtree or process tree) or the host.

`resolve_scope` turns the configuration and the machine's current state into a
`ScopeFilter`: plain data that the program composer compiles into an in-kernel predicate
and that the procfs fallback applies in Python. Reading /proc and the cgroup filesystem is
kept in small functions at the bottom; the rest is pure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sentinel_stack.probe.config import ProbeConfig
from sentinel_stack.probe.procfs import parse_stat

__all__ = [
    "ScopeFilter",
    "cgroup2_mount",
    "cgroup_subtree",
    "descendants",
    "read_parents",
    "resolve_scope",
]

ScopeMode = Literal["host", "tree", "cgroup"]


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """The scope as data. `probe_pid`'s own events (and its children's) are always excluded."""

    mode: ScopeMode
    probe_pid: int
    # tree: the root (launcher) pid and the pids in the tree when the probe started.
    root_pid: int | None = None
    seed_pids: frozenset[int] = frozenset()
    # cgroup: the stack's directory, its path below the cgroup2 mount and the ids under it.
    cgroup_dir: Path | None = None
    cgroup_relpath: str = ""
    cgroup_ids: frozenset[int] = frozenset()

    def describe(self) -> str:
        """One short phrase for status lines and logs."""
        if self.mode == "host":
            return "host"
        if self.mode == "tree":
            return f"stack (process tree of pid {self.root_pid}, {len(self.seed_pids)} at start)"
        return f"stack (cgroup {self.cgroup_dir}, {len(self.cgroup_ids)} cgroups at start)"


def parse_cgroup2_mount(mountinfo: str) -> Path | None:
    """The cgroup v2 mount point from /proc/self/mountinfo text (hybrid or unified layout)."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        if right.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            return Path(fields[4])
    return None


def cgroup2_mount() -> Path | None:
    try:
        return parse_cgroup2_mount(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return None


def cgroup_subtree(directory: Path) -> dict[int, Path]:
    """Cgroup id (the directory's inode number) of `directory` and of every cgroup below it."""
    found: dict[int, Path] = {}
    for current, _dirs, _files in os.walk(directory):
        try:
            found[Path(current).stat().st_ino] = Path(current)
        except OSError:
            continue  # removed while walking
    return found


def descendants(root: int, parents: Mapping[int, int]) -> set[int]:
    """`root` and every pid whose parent chain reaches it, given a pid -> ppid table."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def read_parents(proc: Path = Path("/proc")) -> dict[int, int]:
    """pid -> ppid for every process visible now."""
    parents: dict[int, int] = {}
    for entry in _pid_dirs(proc):
        try:
            parents[int(entry)] = parse_stat((proc / entry / "stat").read_text())[1]
        except (OSError, ValueError, IndexError):
            continue  # exited between listing and reading
    return parents


def _pid_dirs(proc: Path) -> Iterable[str]:
    try:
        return [entry.name for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def resolve_scope(config: ProbeConfig, probe_pid: int | None = None) -> ScopeFilter:
    """Decide the scope from the configuration and the machine, as the launcher contract says.

    Scope "stack" uses the stack's cgroup when the launcher gave one (it runs as root with
    cgroups), else the launcher's process tree (`SENTINEL_STACK_PID`), else, when run by
    hand, the tree of the probe's own parent (the shell that started it).
    """
    me = os.getpid() if probe_pid is None else probe_pid
    if config.scope == "host":
        return ScopeFilter(mode="host", probe_pid=me)
    if config.stack_cgroup is not None:
        directory = config.stack_cgroup
        mount = cgroup2_mount()
        if mount is None:
            raise ValueError("SENTINEL_STACK_CGROUP is set but no cgroup2 filesystem is mounted")
        try:
            relpath = "/" + str(directory.resolve().relative_to(mount.resolve()))
        except ValueError:
            raise ValueError(
                f"SENTINEL_STACK_CGROUP={directory} is not below the cgroup2 mount {mount}"
            ) from None
        ids = cgroup_subtree(directory)
        if not ids:
            raise ValueError(f"SENTINEL_STACK_CGROUP={directory} does not exist")
        return ScopeFilter(
            mode="cgroup",
            probe_pid=me,
            cgroup_dir=directory,
            cgroup_relpath=relpath.rstrip("/") if relpath != "/." else "",
            cgroup_ids=frozenset(ids),
        )
    root = config.stack_pid if config.stack_pid is not None else os.getppid()
    tree = descendants(root, read_parents())
    tree.discard(me)
    return ScopeFilter(mode="tree", probe_pid=me, root_pid=root, seed_pids=frozenset(tree))
