"""Enrichment: what an event's process is (exe, argv, lineage), where it lives (cgroup path,
container id). Wraps the pure lineage table with the one lookup that needs the filesystem:
cgroup id -> path, cached and refreshed at most once a second on a miss.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.lineage import LineageTable
from sentinel_stack.probe.procfs import container_id_from_cgroup

__all__ = ["CgroupIndex", "Enricher"]


class CgroupIndex:
    """cgroup v2 id (directory inode) -> path below the mount, e.g. ``/sentinel-stack.x/probe``."""

    def __init__(self, mount: Path | None, refresh_every: float = 1.0) -> None:
        self.mount = mount
        self.refresh_every = refresh_every
        self._paths: dict[int, str] = {}
        self._refreshed_at = float("-inf")

    def path(self, cgroup_id: int, now: float) -> str | None:
        found = self._paths.get(cgroup_id)
        stale = now - self._refreshed_at >= self.refresh_every
        if found is None and self.mount is not None and stale:
            self.refresh(now)
            found = self._paths.get(cgroup_id)
        return found

    def refresh(self, now: float) -> None:
        self._refreshed_at = now
        if self.mount is None:
            return
        paths: dict[int, str] = {}
        root = str(self.mount)
        for current, _dirs, _files in os.walk(root):
            try:
                inode = Path(current).stat().st_ino
            except OSError:
                continue
            relative = current[len(root) :] or "/"
            paths[inode] = relative
        self._paths = paths

    def learn(self, cgroup_id: int, path: str) -> None:
        self._paths[cgroup_id] = path


class Enricher:
    """Fills an event's process and container fields; the only state is the two indexes."""

    def __init__(
        self,
        lineage: LineageTable,
        cgroups: CgroupIndex,
        clock: Callable[[], float],
    ) -> None:
        self.lineage = lineage
        self.cgroups = cgroups
        self.clock = clock
        self._containers: dict[str, str | None] = {}

    def apply(self, event: ev.KernelEvent) -> None:
        now = self.clock()
        if event.cgroup is not None and event.cgroup_path is None:
            event.cgroup_path = self.cgroups.path(event.cgroup, now)
        self.lineage.apply(event, now)
        path = event.cgroup_path
        if event.container_id is None and path is not None:
            if path not in self._containers:
                if len(self._containers) > 4096:
                    self._containers.clear()
                self._containers[path] = container_id_from_cgroup(path)
            event.container_id = self._containers[path]
